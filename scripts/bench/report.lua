-- report.lua RAW — turns the lines that run.sh collected into the markdown
-- tables of `make bench`. RAW holds, in run order,
--   RESULT <workload> <impl> <value> <unit>   one measurement of one run
--   FAIL <workload> <impl> <reason...>        a run that failed or timed out
-- impl is dlua / pytorch, dlua_<variant> / pytorch_<variant> (a second row,
-- "<workload> (<variant>)"), or anything else: a reference figure (e.g. cblas)
-- that the second table compares with every dlua row of its workload.
-- Each cell is the median over runs. A unit ending in "/s" is a rate (higher
-- is better), any other a time (lower is better); ratios are always "their
-- time / dlua's time", so >1 means dlua is faster.
-- Plain Lua 5.4 (no dlua), so a broken build still gets its report.

local path = assert(arg[1], "usage: lua5.4 report.lua RAW")

local order = {}        -- workloads in first-seen order
local rows = {}         -- workload -> {variants in order, [variant] = {dlua=, pytorch=}}
local refs = {}         -- workload -> {impl names in order}
local samples = {}      -- "workload\0impl" -> {values}
local units = {}        -- "workload\0impl" -> unit
local failed = {}       -- "workload\0impl" -> reason
local failures = {}     -- list of "workload impl: reason"

local function workload(name)
  if not rows[name] then
    rows[name] = {variants = {}}
    refs[name] = {}
    order[#order + 1] = name
  end
  return rows[name]
end

-- dlua_out -> "dlua", "out"; pytorch -> "pytorch", ""; cblas -> nil
local function side_of(impl)
  local side, variant = impl:match("^(dlua)_?(.*)$")
  if not side then side, variant = impl:match("^(pytorch)_?(.*)$") end
  return side, variant
end

local function note(name, impl)
  local w = workload(name)
  local side, variant = side_of(impl)
  if side then
    if not w[variant] then
      w[variant] = {}
      w.variants[#w.variants + 1] = variant
    end
    w[variant][side] = impl
  else
    local seen = false
    for _, r in ipairs(refs[name]) do seen = seen or r == impl end
    if not seen then refs[name][#refs[name] + 1] = impl end
  end
end

for line in io.lines(path) do
  local f = {}
  for word in line:gmatch("%S+") do f[#f + 1] = word end
  if f[1] == "RESULT" and #f >= 5 and tonumber(f[4]) then
    local key = f[2] .. "\0" .. f[3]
    note(f[2], f[3])
    samples[key] = samples[key] or {}
    table.insert(samples[key], tonumber(f[4]))
    units[key] = f[5]
  elseif f[1] == "FAIL" and #f >= 3 then
    note(f[2], f[3])
    failed[f[2] .. "\0" .. f[3]] = true
    failures[#failures + 1] = string.format("%s %s: %s", f[2], f[3],
      table.concat(f, " ", 4))
  end
end

local function median(t)
  if not t or #t == 0 then return nil end
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  local m = #s // 2
  return #s % 2 == 1 and s[m + 1] or (s[m] + s[m + 1]) / 2
end

local function fmt(v)
  if not v then return "-" end
  if v >= 100 then return string.format("%.0f", v) end
  if v >= 10 then return string.format("%.1f", v) end
  return string.format("%.2f", v)
end

local function cell(name, impl)
  if not impl then return nil, "-" end
  local key = name .. "\0" .. impl
  local v = median(samples[key])
  if failed[key] and not v then return nil, "failed" end
  return v, fmt(v), units[key]
end

-- their time / dlua's time, whichever way the unit points
local function speedup(dlua, other, unit)
  if not (dlua and other and dlua > 0 and other > 0) then return "-" end
  local r = unit:match("/s$") and dlua / other or other / dlua
  return string.format("%.2f", r)
end

local out = {}
local function emit(s) out[#out + 1] = s end

emit("| workload | dlua | PyTorch | ratio | unit |")
emit("|---|---:|---:|---:|---|")
local runs = 0
for _, name in ipairs(order) do
  local w = rows[name]
  for _, variant in ipairs(w.variants) do
    local d, ds, du = cell(name, w[variant].dlua)
    local p, ps, pu = cell(name, w[variant].pytorch)
    local unit = du or pu or "-"
    if du and pu and du ~= pu then unit = du .. " vs " .. pu end
    local label = variant == "" and name or string.format("%s (%s)", name, variant)
    emit(string.format("| %s | %s | %s | %s | %s |", label, ds, ps,
      (du == pu) and speedup(d, p, unit) or "-", unit))
    for _, impl in pairs(w[variant]) do
      runs = math.max(runs, #(samples[name .. "\0" .. impl] or {}))
    end
  end
end
emit("")
emit(string.format("ratio = PyTorch's time / dlua's time (for rates: dlua / PyTorch); "
  .. ">1 means dlua is faster. Each figure is the median of up to %d runs.", runs))

-- references: how far each dlua row is from the bare library it calls
local header = false
for _, name in ipairs(order) do
  for _, ref in ipairs(refs[name]) do
    local r, rs, ru = cell(name, ref)
    for _, variant in ipairs(rows[name].variants) do
      local impl = rows[name][variant].dlua
      if impl then
        if not header then
          emit("")
          emit("| reference | figure | dlua | dlua / reference | unit |")
          emit("|---|---:|---:|---:|---|")
          header = true
        end
        local d, ds, du = cell(name, impl)
        local over = "-"
        if d and r and du == ru and d > 0 and r > 0 then
          -- dlua's time / the reference's time: 1.00 means no overhead
          over = string.format("%.2f", (du or ""):match("/s$") and r / d or d / r)
        end
        local label = variant == "" and name or string.format("%s (%s)", name, variant)
        emit(string.format("| %s vs %s | %s | %s | %s | %s |", label, ref,
          rs, ds, over, ru or du or "-"))
      end
    end
  end
end
if header then
  emit("")
  emit("dlua / reference = dlua's time / the reference's time: 1.00 means dlua adds no overhead.")
end

if #failures > 0 then
  emit("")
  emit("Failed runs:")
  for _, f in ipairs(failures) do emit("- " .. f) end
end

io.write(table.concat(out, "\n"), "\n")
os.exit(#failures == 0 and 0 or 1)
