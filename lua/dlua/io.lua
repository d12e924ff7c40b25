-- dlua.io — dl.save(path, obj) and dl.load(path).
--
-- Formats (the extension picks the one written; loading reads the magic):
--  * `.npy`: one tensor, NumPy format 1.0 (2.0 for a header past 64 KiB),
--    little-endian, C order, dtypes f4 f8 i8 u1 b1. Loading also accepts
--    big-endian files (byte-swapped) and Fortran order (made C order).
--  * `.safetensors`: a flat table {name = tensor} with string keys; tensors
--    are laid out in sorted key order, so the same table gives the same
--    bytes. dl.load returns the table and the header's __metadata__.
--  * anything else, a checkpoint: any nesting of tables, tensors, numbers
--    (integer or float kept apart), strings and booleans:
--      "DLUACKPT" | u32 version | u32 flags (0) | u64 n | n bytes: a
--      safetensors blob holding every tensor, named by its path
--      ("model/fc1.weight") | the structure, to the end of the file.
--    The structure is a tagged binary encoding read by a bounds-checked
--    decoder (never Lua code, never `load`): "T"/"F" booleans, "i" <i8,
--    "d" <d, "s" <s4 string, "t" <s4 name of a tensor in the blob,
--    "{" <I4 count then count (key, value) pairs. Keys are written sorted
--    (or in a table's own __pairs order, as a state_dict has). An object of
--    a dlua class (Module, optimiser, scheduler, dataset) is refused: its
--    methods cannot be written, so save its state_dict() instead.
-- Writes are atomic: the bytes go to a temporary file in the same directory
-- that is fsync'd and renamed over the target, so an error or a crash
-- mid-write leaves the previous file intact and no temporary file behind;
-- a symlink is written through, the replaced file's mode is kept.
local dl = require "dlua"
local class_of = require("dlua.class").class_of
local rethrow = require("dlua.errors").rethrow
local C = dl._io

local MAGIC = "DLUACKPT"
local MAX_DEPTH = 200

local function argerror(fn, n, expected, got)
  error(string.format("%s: bad argument #%d (%s expected, got %s)", fn, n, expected, got), 3)
end

local function typename(v)
  return dl.is_tensor(v) and "tensor" or type(v)
end

-- runs fill(w) against an atomic writer; any error removes the temp file
local function write_atomic(path, fill)
  local w = C.writer(path)
  local ok, err = pcall(fill, w)
  if not ok then
    w:abort()
    error(err, 0)
  end
  w:commit()
end

-- a name safetensors readers accept: valid UTF-8, no NUL
local function clean_name(s)
  s = s:gsub("%z", "?")
  if not utf8.len(s) then s = s:gsub("[\128-\255]", "?") end
  return s
end

local function save_npy(path, t)
  local header = C.npy_header(t)
  write_atomic(path, function(w)
    w:write(header)
    w:write_tensor(t)
  end)
end

local function save_safetensors(path, tbl)
  local names = {}
  for k, v in pairs(tbl) do
    if type(k) ~= "string" then
      error(string.format("dl.save: %s: a .safetensors file holds a flat table with string keys, got a %s key",
                          path, type(k)), 3)
    end
    if not dl.is_tensor(v) then
      error(string.format("dl.save: %s: a .safetensors file holds only tensors, but '%s' is a %s", path, k,
                          typename(v)), 3)
    end
    if k:find("%z") or not utf8.len(k) then
      error(string.format("dl.save: %s: tensor name %q is not valid UTF-8 text", path, k), 3)
    end
    names[#names + 1] = k
  end
  table.sort(names)
  local ts = {}
  for i, k in ipairs(names) do ts[i] = tbl[k] end
  local header = C.st_header(names, ts, nil)
  write_atomic(path, function(w)
    w:write(header)
    for _, t in ipairs(ts) do w:write_tensor(t) end
  end)
end

-- ---- checkpoint structure ----

local type_rank = {boolean = 1, number = 2, string = 3}
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return type_rank[ta] < type_rank[tb] end
  if ta == "boolean" then return (not a) and b end
  return a < b
end

local function table_keys(t)
  local keys = {}
  local mt = getmetatable(t)
  for k in pairs(t) do keys[#keys + 1] = k end
  if not (mt and mt.__pairs) then
    for _, k in ipairs(keys) do
      if not type_rank[type(k)] then return keys end -- reported by the caller
    end
    table.sort(keys, key_less)
  end
  return keys
end

-- returns tensor names, tensors (in sorted name order) and the structure
local function encode(obj, path)
  local out, names, tensors, by_name, visiting = {}, {}, {}, {}, {}
  local function fail(where, what)
    error(string.format("dl.save: %s: %s at '%s'", path, what, where == "" and "(root)" or where), 0)
  end
  local function put_string(tag, s)
    out[#out + 1] = tag .. string.pack("<s4", s)
  end
  local function value(v, where, depth)
    local tv = type(v)
    if dl.is_tensor(v) then
      local name = clean_name(where == "" and "tensor" or where)
      if by_name[name] then
        local i = 2
        while by_name[name .. "#" .. i] do i = i + 1 end
        name = name .. "#" .. i
      end
      by_name[name] = v
      names[#names + 1] = name
      put_string("t", name)
    elseif tv == "boolean" then
      out[#out + 1] = v and "T" or "F"
    elseif tv == "number" then
      out[#out + 1] = math.type(v) == "integer" and "i" .. string.pack("<i8", v) or "d" .. string.pack("<d", v)
    elseif tv == "string" then
      put_string("s", v)
    elseif tv == "table" then
      local cls = class_of(v)
      if cls then -- its methods and metatable cannot be written: it would load as a bare table
        fail(where, string.format("cannot save a %s object (%s)", rawget(cls, "__name"),
          v.state_dict and "save its state_dict() and restore it with load_state_dict()" or "save its data instead"))
      end
      if visiting[v] then fail(where, "a table that contains itself") end
      if depth >= MAX_DEPTH then fail(where, "tables nested deeper than " .. MAX_DEPTH) end
      visiting[v] = true
      local keys = table_keys(v)
      out[#out + 1] = "{" .. string.pack("<I4", #keys)
      for _, k in ipairs(keys) do
        local tk = type(k)
        local sub = (where == "" and "" or where .. "/") .. tostring(k)
        if not type_rank[tk] then fail(sub, "cannot save a " .. typename(k) .. " key") end
        value(k, sub, depth + 1)
        value(v[k], sub, depth + 1)
      end
      visiting[v] = nil
    else
      fail(where, "cannot save a " .. tv .. " value")
    end
  end
  value(obj, "", 0)
  table.sort(names)
  for i, n in ipairs(names) do tensors[i] = by_name[n] end
  return names, tensors, table.concat(out)
end

local function save_checkpoint(path, obj)
  write_atomic(path, function(w)
    -- the temp file exists from here on: a value that cannot be saved,
    -- found midway, still leaves the old file untouched
    local names, tensors, structure = encode(obj, path)
    local header, data_len = C.st_header(names, tensors, {format = "dlua"})
    w:write(MAGIC .. string.pack("<I4I4I8", C.checkpoint_version, 0, #header + data_len))
    w:write(header)
    for _, t in ipairs(tensors) do w:write_tensor(t) end
    w:write(structure)
  end)
end

local function decode(s, tensors, path)
  local pos, n = 1, #s
  local used = {}
  local function fail(what)
    error(string.format("dl.load: %s: bad checkpoint structure: %s (at byte %d of %d)", path, what, pos, n), 0)
  end
  local function need(k)
    if n - pos + 1 < k then fail("truncated") end
  end
  local function str()
    need(4)
    local len = string.unpack("<I4", s, pos)
    need(4 + len)
    local v = s:sub(pos + 4, pos + 3 + len)
    pos = pos + 4 + len
    return v
  end
  local value
  function value(depth)
    if depth > MAX_DEPTH then fail("nested deeper than " .. MAX_DEPTH) end
    need(1)
    local tag = s:sub(pos, pos)
    pos = pos + 1
    if tag == "T" then return true end
    if tag == "F" then return false end
    if tag == "i" or tag == "d" then
      need(8)
      local v = string.unpack(tag == "i" and "<i8" or "<d", s, pos)
      pos = pos + 8
      return v
    end
    if tag == "s" then return str() end
    if tag == "t" then
      local name = str()
      local t = tensors[name]
      if not t then fail(string.format("reference to a missing tensor %q", name)) end
      used[name] = true
      return t
    end
    if tag == "{" then
      need(4)
      local count = string.unpack("<I4", s, pos)
      pos = pos + 4
      -- every pair takes at least 2 bytes
      if count > (n - pos + 1) // 2 then fail("table of " .. count .. " entries runs past the end") end
      local t = {}
      for _ = 1, count do
        local k = value(depth + 1)
        if type(k) == "table" or dl.is_tensor(k) or k ~= k then fail("bad table key") end
        if t[k] ~= nil then fail("duplicate key " .. tostring(k)) end
        t[k] = value(depth + 1)
      end
      return t
    end
    fail(string.format("unknown tag 0x%02x", tag:byte()))
  end
  local v = value(0)
  if pos ~= n + 1 then fail("trailing bytes") end
  for name in pairs(tensors) do
    if not used[name] then
      error(string.format("dl.load: %s: bad checkpoint structure: tensor %q is not referenced", path, name), 0)
    end
  end
  return v
end

-- dl.save(path, obj, {all_ranks = false}) -> whether this process wrote:
-- in a dl.dist job only rank 0 writes (one checkpoint, not one a rank
-- racing for the same file) unless all_ranks
function dl.save(path, obj, opts)
  if type(path) ~= "string" then argerror("dl.save", 1, "string", type(path)) end
  if obj == nil then argerror("dl.save", 2, "a tensor or a table", "nil") end
  if opts ~= nil then
    if type(opts) ~= "table" or dl.is_tensor(opts) then argerror("dl.save", 3, "options table", typename(opts)) end
    for k in pairs(opts) do
      if k ~= "all_ranks" then error(require("dlua.checks").unknown_option("dl.save", k, {"all_ranks"}), 2) end
    end
  end
  if not (opts and opts.all_ranks) and not dl.dist.is_main() then return false end
  local ext = (path:match("%.([%w_]+)$") or ""):lower()
  if ext == "npy" then
    if not dl.is_tensor(obj) then argerror("dl.save", 2, "tensor (for a .npy file)", typename(obj)) end
    save_npy(path, obj)
  elseif ext == "safetensors" then
    if type(obj) ~= "table" or dl.is_tensor(obj) then
      argerror("dl.save", 2, "table of tensors (for a .safetensors file)", typename(obj))
    end
    save_safetensors(path, obj)
  else
    save_checkpoint(path, obj)
  end
  return true
end

function dl.load(path)
  if type(path) ~= "string" then argerror("dl.load", 1, "string", type(path)) end
  local ok, kind, a, b, c = pcall(C.load, path)
  if not ok then rethrow(kind) end
  if kind == "npy" then return a end
  if kind == "safetensors" then return a, b end
  return decode(c, a, path)
end

return dl
