-- dlua.help: dl.help(x), the reference entry of a public name, read from
-- the docs/ pages built into the program (dl._reference_pages()); the REPL's
-- help(x) and ?x print it.
local dl = require "dlua"

local M = {}

-- value -> "dl.a.b": a walk of dl's tables (three levels, classes
-- included), made once
local names
local function name_of(v)
  if not names then
    names = setmetatable({}, {__mode = "k"})
    local function walk(t, prefix, depth, seen)
      if seen[t] then return end
      seen[t] = true
      for k, x in pairs(t) do
        if type(k) == "string" and k:sub(1, 1) ~= "_" then
          local name = prefix .. k
          -- one value under several names: not a Tensor method's, the
          -- shortest (dl.dist.init, not its alias init_process_group)
          local have = names[x]
          local better = not have or (have:find(".Tensor.", 1, true) and not name:find(".Tensor.", 1, true)) or
            (#name < #have and not name:find(".Tensor.", 1, true))
          if (type(x) == "function" or type(x) == "table") and better then names[x] = name end
          if type(x) == "table" and depth > 0 and getmetatable(x) ~= x then walk(x, name .. ".", depth - 1, seen) end
        end
      end
    end
    names[dl] = "dl"
    walk(dl, "dl.", 3, {})
  end
  return names[v]
end

-- the names an entry may be written under: dl.nn.Conv2d, nn.Conv2d, Conv2d
local function spellings(name)
  local out = {name}
  local short = name:gsub("^dl%.", "")
  if short ~= name then out[#out + 1] = short end
  local last = name:match("[%.:]([%w_]+)$")
  if last and last ~= short then out[#out + 1] = last end
  if name:match("^dl%.F%.") then out[#out + 1] = "F." .. last end
  return out
end

-- the first code span of a line that opens an entry (a heading, a table
-- row, a bullet, or a paragraph that starts with one), or nil; a heading
-- without one is its own text ("## MultiheadAttention")
-- the kind: "title" (such a heading), "para", or "entry"
local function entry_code(line)
  -- a paragraph opens an entry when its first line is the signature alone
  if line:match("^`") then return line:match("^`([^`]+)`%s*[,;:.]?%s*$"), "para" end
  if not (line:match("^#") or line:match("^|") or line:match("^%s*[-*] ")) then return nil end
  local code = line:match("`([^`]+)`")
  if code then return code, "entry" end
  if line:match("^#") then return line:match("^#+%s*(.-)%s*$"), "title" end
end

-- every code span of an entry line (a bullet or row may name several:
-- "`F.layer_norm(...)`, `nn.LayerNorm(...)`"; a table row's first cell only)
local function entry_codes(line)
  local out = {}
  local text = line:match("^|([^|]*)|") or line
  for code in text:gmatch("`([^`]+)`") do out[#out + 1] = code end
  return out
end

local function contains_word(code, word)
  local at = 1
  while true do
    local i, j = code:find(word, at, true)
    if not i then return false end
    local before, after = code:sub(i - 1, i - 1), code:sub(j + 1, j + 1)
    if not before:match("[%w_]") and not after:match("[%w_]") then return true end
    at = j + 1
  end
end

-- the entry that starts at lines[i]: a table row alone, a bullet with its
-- continuation lines, a heading's section up to the next heading of its
-- level or above
local function entry_at(lines, i)
  local line = lines[i]
  if line:match("^|") then return line end
  local out = {line}
  local level = line:match("^(#+)")
  local indent = line:match("^(%s*)[-*] ") or ""
  for k = i + 1, #lines do
    local l = lines[k]
    if level then
      local h = l:match("^(#+)")
      if h and #h <= #level then break end
    else
      if l == "" or l:match("^#") or l:match("^|") then break end
      local ind = l:match("^(%s*)[-*] ")
      if ind and #ind <= #indent then break end
    end
    out[#out + 1] = l
  end
  while out[#out] == "" do out[#out] = nil end
  return table.concat(out, "\n")
end

local pages_cache
local function pages()
  if not pages_cache then
    pages_cache = {}
    local texts, order = dl._reference_pages(), {}
    for path in pairs(texts) do order[#order + 1] = path end
    table.sort(order) -- docs/guide.md, then the reference pages by name
    for _, path in ipairs(order) do
      local lines = {}
      for l in (texts[path] .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
      pages_cache[#pages_cache + 1] = {path = path, lines = lines}
    end
  end
  return pages_cache
end

-- whether a code span is a signature naming word: the word among the
-- names before its "(" ("nn.Conv1d / Conv2d / Conv3d(...)"), not inside a
-- quoted message
-- quoted message; its arguments are names, not values ("LSTM(3, 4): ..."
-- is an error message's call)
local function signature_of(code, word, bare)
  local head = code:match("^([^(]*)%(")
  -- in a bullet or row, a bare name is an entry too (`nn.Unfold`, `nn.Fold`)
  if not head and bare and code:match("^[%w_%.:%s/]+$") then head = code end
  if not head or code:match("^[^(]*%(%s*[%d%-\"]") then return false end
  if #head >= 80 or not head:match("^[%w_%.:%s/]+$") then return false end
  if contains_word(head, word) then return true end
  -- "nn.MaxPool1d / 2d / 3d(...)" names MaxPool2d: a stem written once, then
  -- its other dimensions
  local stem, dims = word:match("^(.-)(%dd)$")
  if not stem or stem == "" then return false end
  return head:find(stem .. "%dd") ~= nil and head:find("/%s*" .. dims .. "%f[^%w]") ~= nil
end

-- the three ways a page holds an entry, tried in turn for every spelling:
-- a bullet, row or heading whose code is the signature; a signature line
-- in a code block (the entry: the section around it); any entry line
-- naming the word
-- (the entry with the fullest signature wins: "dl.utils.progress(n |
-- iterator | list, {...})" over a mention written "dl.utils.progress(...)")
local function by_entry_signature(p, word)
  local bullet -- the bullet a continuation line belongs to
  for i, line in ipairs(p.lines) do
    local code, kind = entry_code(line)
    if line:match("^%s*[-*] ") then bullet = i elseif line == "" or line:match("^[#|]") then bullet = nil end
    if code and kind == "title" and code == word then return entry_at(p.lines, i), #code end
    if code and kind == "para" and signature_of(code, word) then return entry_at(p.lines, i), #code end
    local at = (code and kind == "entry") and i or (bullet and line:match("^%s+`") and bullet)
    if at then
      for _, c in ipairs(entry_codes(line)) do
        if signature_of(c, word, true) then return entry_at(p.lines, at), #c end
      end
    end
  end
end

local function by_block_signature(p, word)
  local heading, fenced = nil, false
  for i, line in ipairs(p.lines) do
    if line:match("^```") then
      fenced = not fenced
    elseif fenced then
      if heading and signature_of(line:match("^%s*(.-)%s*$"), word) then return entry_at(p.lines, heading) end
    elseif line:match("^#") then
      heading = i
    end
  end
end

local function by_mention(p, word)
  for i, line in ipairs(p.lines) do
    local code, kind = entry_code(line)
    if code and kind == "entry" and contains_word(code, word) then return entry_at(p.lines, i) end
  end
end

-- the page a name's area is documented on: an entry there wins over a
-- mention elsewhere (m:state_dict() in nn.md, not scaler:state_dict())
local AREA_PAGE = {
  nn = "nn.md", F = "nn.md", data = "data.md", datasets = "data.md", preprocessing = "data.md",
  cluster = "data.md", optim = "optim.md", utils = "utils.md", metrics = "utils.md", plot = "utils.md",
  cuda = "utils.md", dist = "dist.md", autograd = "autograd.md", Tensor = "tensors.md",
}
local function area_page(name)
  local area = name:match("^dl%.([%w_]+)%.") or name:match("^([%w_]+)[%.:]")
  return AREA_PAGE[area] or (name:match("^dl%.[%w_]+$") and "tensors.md")
end

local function find(name)
  local home = area_page(name)
  for _, how in ipairs({by_entry_signature, by_block_signature, by_mention}) do
    for _, word in ipairs(spellings(name)) do
      local best, best_path, best_score
      for _, p in ipairs(pages()) do
        if p.path:find("reference/", 1, true) then
          local entry, len = how(p, word)
          local score = (len or 0) + (home and p.path:sub(-#home - 1) == "/" .. home and 10000 or 0)
          if entry and (not best or score > best_score) then best, best_path, best_score = entry, p.path, score end
        end
      end
      if best then return best, best_path end
    end
  end
end

-- the value a name of dl names ("dl.nn.Linear", "nn.Linear"), or nil
local function value_at(name)
  local v = dl
  for part in name:gsub("^dl%.?", ""):gmatch("[^%.]+") do v = type(v) == "table" and rawget(v, part) or nil end
  return v
end

-- dl.help(x) -> the reference entry of x (a function, class or module of
-- dl, or its name as a string), as a string
function M.help(x)
  local name
  if type(x) == "string" then
    name = x:match("^%s*(.-)%s*$")
    if not name:match("^dl[%.:]") and not name:match("^Tensor") then name = "dl." .. name end
    -- a name of a value of dl goes by that value's main name (an alias's
    -- entry is its original's)
    local v = value_at(name)
    if v ~= nil and v ~= dl then name = name_of(v) or name end
  else
    name = name_of(x)
  end
  if not name then
    return "dl.help: not a public function, class or module of dl (a " .. type(x) .. "); " ..
      "docs/guide.md and docs/reference/ hold the reference"
  end
  -- a module (a plain table of dl, not a class): what it holds
  local v = value_at(name)
  local module = type(v) == "table" and rawget(v, "__name") == nil
  local entry, path
  if not module then entry, path = find(name) end
  if not entry then
    if module then
      local members = {}
      for k in pairs(v) do
        if type(k) == "string" and k:sub(1, 1) ~= "_" then members[#members + 1] = k end
      end
      table.sort(members)
      return string.format("%s: a module of dl holding %s\n(help(%s.<name>) for each; docs/guide.md and " ..
        "docs/reference/*.md hold the reference)", name, table.concat(members, ", "), name)
    end
    return string.format("%s: no reference entry yet (docs/guide.md and docs/reference/*.md hold the reference)", name)
  end
  return string.format("%s  (%s)\n\n%s", name, path, entry)
end

dl.help = M.help
return M
