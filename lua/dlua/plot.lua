-- dl.plot: line plots (loss/accuracy curves) written to PNG or SVG by
-- gnuplot (Debian's gnuplot-nox), fed through a temporary data file.
local dl = require "dlua"

local plot = {}
dl.plot = plot

local FN = "dl.plot.lines"

-- gnuplot single-quoted string: no escapes inside except '' for '
local function gq(s)
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- a list of numbers from a Lua list or a 1-D tensor
local function numbers(v, what)
  if dl.is_tensor(v) then
    if v:dim() ~= 1 then
      error(string.format("%s: %s must be a 1-D tensor, got shape [%s]", FN, what, table.concat(v:size(), ",")), 4)
    end
    return v:detach():double():totable()
  end
  if type(v) ~= "table" then
    error(string.format("%s: %s must be a list of numbers or a 1-D tensor, got %s", FN, what, type(v)), 4)
  end
  local out = {}
  for i = 1, #v do
    local x = v[i]
    if dl.is_tensor(x) and x:numel() == 1 then x = x:item() end
    if type(x) ~= "number" then
      error(string.format("%s: %s[%d] is a %s, not a number", FN, what, i, type(x)), 4)
    end
    out[i] = x
  end
  return out
end

-- one series {name, x, y} from a value: a list/tensor of y, or {x = ..., y = ...}
local function make_series(name, v)
  local x, y
  if type(v) == "table" and not dl.is_tensor(v) and v.y ~= nil then
    y = numbers(v.y, "series '" .. name .. "'.y")
    if v.x ~= nil then
      x = numbers(v.x, "series '" .. name .. "'.x")
      if #x ~= #y then
        error(string.format("%s: series '%s' has %d x values and %d y values", FN, name, #x, #y), 3)
      end
    end
  else
    y = numbers(v, "series '" .. name .. "'")
  end
  if #y == 0 then error(string.format("%s: series '%s' is empty", FN, name), 3) end
  if not x then
    x = {}
    for i = 1, #y do x[i] = i end
  end
  return {name = name, x = x, y = y}
end

-- series: {name = ys | {x =, y =}, ...} (drawn in name order), a list of
-- {name =, x =, y =} (drawn in list order), or one list/tensor of ys.
local function collect(series)
  if dl.is_tensor(series) then return {make_series("y", series)} end
  if type(series) ~= "table" then
    error(string.format("%s: bad argument #1 (table of series expected, got %s)", FN, type(series)), 3)
  end
  local out = {}
  if series[1] ~= nil then
    if type(series[1]) == "number" or dl.is_tensor(series[1]) then
      return {make_series("y", series)}
    end
    for i, s in ipairs(series) do
      if type(s) ~= "table" or dl.is_tensor(s) or s.y == nil then
        error(string.format("%s: series %d must be a table {name =, x =, y =}", FN, i), 3)
      end
      out[i] = make_series(s.name and tostring(s.name) or ("series " .. i), s)
    end
    return out
  end
  local names = {}
  for k in pairs(series) do
    if type(k) ~= "string" then
      error(string.format("%s: series names must be strings, got %s", FN, type(k)), 3)
    end
    names[#names + 1] = k
  end
  table.sort(names)
  if #names == 0 then error(FN .. ": no series to plot", 3) end
  for i, k in ipairs(names) do out[i] = make_series(k, series[k]) end
  return out
end

-- NaN and +-inf are written as NaN, which gnuplot reads as undefined: the
-- line breaks there (a gap). ("set datafile missing" would join across it.)
local function num(x)
  if x ~= x or x == math.huge or x == -math.huge then return "NaN" end
  return string.format("%.17g", x)
end

local allowed = {
  file = true, title = true, xlabel = true, ylabel = true, logy = true,
  y2 = true, y2label = true, width = true, height = true, gnuplot = true,
}

-- lines(series, {file, title, xlabel, ylabel, logy, y2 = {names}, y2label,
-- width, height, gnuplot}) -> file. The extension picks the format (.png,
-- .svg); series named in y2 are drawn against the right axis.
function plot.lines(series, opts)
  if type(opts) ~= "table" then
    error(string.format("%s: bad argument #2 (options table with 'file' expected, got %s)", FN, type(opts)), 2)
  end
  for k in pairs(opts) do
    if not allowed[k] then error(require("dlua.checks").unknown_option(FN, k, allowed), 2) end
  end
  local file = opts.file
  if type(file) ~= "string" or file == "" then
    error(FN .. ": option 'file' (a .png or .svg path) is required", 2)
  end
  local ext = file:match("%.(%w+)$")
  ext = ext and ext:lower()
  if ext ~= "png" and ext ~= "svg" then
    error(string.format("%s: cannot tell the format of '%s' (use a .png or .svg extension)", FN, file), 2)
  end
  for _, k in ipairs({"title", "xlabel", "ylabel", "y2label", "gnuplot"}) do
    if opts[k] ~= nil and type(opts[k]) ~= "string" then
      error(string.format("%s: option '%s' must be a string, got %s", FN, k, type(opts[k])), 2)
    end
  end
  local width, height = opts.width or 800, opts.height or 500
  for k, v in pairs({width = width, height = height}) do
    if type(v) ~= "number" or v < 16 or v > 10000 or v ~= math.floor(v) then
      error(string.format("%s: option '%s' must be an integer in 16..10000, got %s", FN, k, tostring(v)), 2)
    end
  end
  local list = collect(series)
  local on_y2 = {}
  if opts.y2 ~= nil then
    if type(opts.y2) ~= "table" then
      error(string.format("%s: option 'y2' must be a list of series names, got %s", FN, type(opts.y2)), 2)
    end
    local known = {}
    for _, s in ipairs(list) do known[s.name] = true end
    for _, n in ipairs(opts.y2) do
      if not known[n] then error(string.format("%s: option 'y2' names '%s', which is not a series", FN, tostring(n)), 2) end
      on_y2[n] = true
    end
  end
  if opts.logy then
    for _, s in ipairs(list) do
      for i, y in ipairs(s.y) do
        if not on_y2[s.name] and y <= 0 then
          error(string.format("%s: logy needs positive values, series '%s' has %g at %d", FN, s.name, y, i), 2)
        end
      end
    end
  end

  local data, script = os.tmpname(), os.tmpname()
  local function cleanup()
    os.remove(data)
    os.remove(script)
  end
  local f = assert(io.open(data, "w"))
  for i, s in ipairs(list) do
    if i > 1 then f:write("\n\n") end
    local buf = {}
    for j = 1, #s.y do buf[j] = num(s.x[j]) .. " " .. num(s.y[j]) end
    f:write(table.concat(buf, "\n"), "\n")
  end
  f:close()

  local g = {}
  if ext == "png" then
    -- pngcairo when this gnuplot has it, else libgd's png
    g[#g + 1] = string.format(
      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo noenhanced size %d,%d } else { set terminal png noenhanced size %d,%d }",
      width, height, width, height)
  else
    g[#g + 1] = string.format("set terminal svg noenhanced size %d,%d", width, height)
  end
  -- gnuplot writes beside the target and the result is renamed over it, so a
  -- failed run leaves an earlier plot intact
  local part = file .. ".part"
  g[#g + 1] = "set output " .. gq(part)
  g[#g + 1] = "set grid"
  g[#g + 1] = "set key below"
  if opts.title then g[#g + 1] = "set title " .. gq(opts.title) end
  if opts.xlabel then g[#g + 1] = "set xlabel " .. gq(opts.xlabel) end
  if opts.ylabel then g[#g + 1] = "set ylabel " .. gq(opts.ylabel) end
  if opts.logy then g[#g + 1] = "set logscale y" end
  if next(on_y2) then
    g[#g + 1] = "set y2tics"
    g[#g + 1] = "set ytics nomirror"
    if opts.y2label then g[#g + 1] = "set y2label " .. gq(opts.y2label) end
  end
  local items = {}
  for i, s in ipairs(list) do
    local style = #s.y == 1 and "linespoints" or "lines"
    items[i] = string.format("%s index %d using 1:2 with %s lw 2 title %s%s",
      i == 1 and gq(data) or "''", i - 1, style, gq(s.name), on_y2[s.name] and " axes x1y2" or "")
  end
  g[#g + 1] = "plot " .. table.concat(items, ", \\\n  ")
  g[#g + 1] = "unset output"
  f = assert(io.open(script, "w"))
  f:write(table.concat(g, "\n"), "\n")
  f:close()

  local prog = opts.gnuplot or os.getenv("DLUA_GNUPLOT") or "gnuplot"
  local p = io.popen(shell_quote(prog) .. " " .. shell_quote(script) .. " 2>&1", "r")
  local out = p and p:read("a") or ""
  local ok, _, code = true, nil, 0
  if p then ok, _, code = p:close() end
  cleanup()
  local chk = io.open(part, "rb")
  local size = chk and chk:seek("end") or 0
  if chk then chk:close() end
  if not ok or size == 0 then os.remove(part) end
  if code == 127 or (not ok and out:find("not found", 1, true)) then
    error(string.format("%s: gnuplot not found (ran '%s'); install Debian's gnuplot-nox (bash scripts/install-deps.sh)", FN, prog), 2)
  end
  if not ok then
    error(string.format("%s: gnuplot failed (exit %s) writing '%s': %s", FN, tostring(code), file, out:gsub("%s+$", "")), 2)
  end
  if size == 0 then
    error(string.format("%s: gnuplot wrote nothing to '%s'%s", FN, file, out ~= "" and (": " .. out:gsub("%s+$", "")) or ""), 2)
  end
  local renamed, err = os.rename(part, file)
  if not renamed then
    os.remove(part)
    error(string.format("%s: cannot write '%s': %s", FN, file, tostring(err)), 2)
  end
  return file
end

return dl
