-- plot_ratios.lua RATIOS PNG — the README's picture of `make bench`: one
-- bar per workload, log10 of the speed ratio (PyTorch's time / dlua's time;
-- above 0: dlua is faster), drawn with dl.plot.lines. RATIOS is the file
-- report.lua writes: "<label>\t<one-thread ratio>\t<T-thread ratio>" per
-- row ("-" where there is none) and "#threads\t<T>".
-- A bar is a series of its own (the legend names it and gives the ratios):
-- a box for the one-thread ratio, and a thin line right of it for the
-- T-thread one (dlua at T threads against PyTorch's best setting).
-- Usage: dlua plot_ratios.lua RATIOS PNG
local dl = require "dlua"

local src, png = arg[1], arg[2]
if not (src and png) then
  io.stderr:write("usage: dlua plot_ratios.lua RATIOS PNG\n")
  os.exit(2)
end

local rows, threads = {}, "T"
for line in io.lines(src) do
  local a, b, c = line:match("^([^\t]+)\t([^\t]+)\t?([^\t]*)$")
  if a == "#threads" then
    threads = b
  elseif a then
    rows[#rows + 1] = {label = a, one = tonumber(b), multi = tonumber(c)}
  end
end
if #rows == 0 then
  io.stderr:write("plot_ratios: no ratios in " .. src .. "\n")
  os.exit(1)
end

local HALF = 0.18 -- half a box's width
local series, lo, hi = {{name = "parity (1x)", x = {0.4, #rows + 0.6}, y = {0, 0}}}, 0, 0
for i, r in ipairs(rows) do
  local x, y = {}, {}
  local function add(px, py) x[#x + 1], y[#y + 1] = px, py end
  local name = string.format("%d %s: %s", i, r.label, r.one and string.format("%.2fx", r.one) or "-")
  if r.one then
    local h = math.log(r.one, 10)
    add(i - HALF, 0); add(i - HALF, h); add(i + HALF, h); add(i + HALF, 0)
    lo, hi = math.min(lo, h), math.max(hi, h)
  end
  if r.multi then
    local h = math.log(r.multi, 10)
    if #x == 0 then add(i, 0) end
    add(i + HALF + 0.12, 0); add(i + HALF + 0.12, h)
    lo, hi = math.min(lo, h), math.max(hi, h)
    name = name .. string.format(" (%s thr %.2fx)", threads, r.multi)
  end
  if #x > 0 then series[#series + 1] = {name = name, x = x, y = y} end
end

dl.plot.lines(series, {
  file = png,
  title = string.format("dlua vs PyTorch, log10(PyTorch time / dlua time): above 0, dlua is faster "
    .. "(boxes: 1 thread; thin bars: %s threads, PyTorch's best setting)", threads),
  xlabel = "workload (numbered as in the legend)",
  ylabel = "log10 speed ratio",
  width = 1200, height = 720,
})
print("plot_ratios: wrote " .. png)
