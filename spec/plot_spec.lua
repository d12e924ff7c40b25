-- dl.plot.lines: PNG and SVG line plots through gnuplot.
local dl = require "dlua"
local H = require "spec.helper"

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function tmp(ext)
  local p = os.tmpname()
  os.remove(p)
  return p .. ext
end

local PNG_MAGIC = "\137PNG\r\n\26\n"

describe("dl.plot.lines", function()
  it("writes a PNG for a .png file and returns its path", function()
    local file = tmp(".png")
    local r = dl.plot.lines({loss = {1.0, 0.6, 0.4, 0.35}}, {file = file, title = "loss", xlabel = "epoch", ylabel = "ce"})
    assert.equal(file, r)
    local s = slurp(file)
    assert.truthy(s and #s > 100)
    assert.equal(PNG_MAGIC, s:sub(1, 8))
    os.remove(file)
  end)

  it("writes an SVG for a .svg file, with every series named in the legend", function()
    local file = tmp(".svg")
    dl.plot.lines({train = {3, 2, 1}, val = {3.5, 2.5, 2}}, {file = file, title = "curves"})
    local s = slurp(file)
    assert.truthy(s:find("<svg", 1, true))
    assert.truthy(s:find(">train<", 1, true))
    assert.truthy(s:find(">val<", 1, true))
    assert.truthy(s:find(">curves<", 1, true))
    os.remove(file)
  end)

  it("takes {x =, y =} series, tensors and a list of named series", function()
    local file = tmp(".svg")
    dl.plot.lines({
      a = {x = {0, 0.5, 1}, y = {1, 2, 4}},
      b = dl.tensor({2, 1, 0.5}),
      c = {x = dl.linspace(0, 1, 3), y = dl.tensor({0.1, 0.2, 0.3}, {dtype = "float64"})},
    }, {file = file})
    local s = slurp(file)
    for _, n in ipairs({"a", "b", "c"}) do assert.truthy(s:find(">" .. n .. "<", 1, true), n) end
    os.remove(file)
    dl.plot.lines({{name = "first", y = {1, 2}}, {name = "second", x = {1, 2}, y = {2, 1}}}, {file = file})
    s = slurp(file)
    assert.truthy(s:find(">first<", 1, true) and s:find(">second<", 1, true))
    os.remove(file)
    dl.plot.lines(dl.tensor({1, 4, 9}), {file = file})
    assert.truthy(slurp(file):find("<svg", 1, true))
    os.remove(file)
  end)

  it("plots a one-point series, NaN gaps and a log y axis", function()
    local file = tmp(".png")
    dl.plot.lines({one = {5}, gap = {1, 0 / 0, 3}}, {file = file})
    assert.equal(PNG_MAGIC, slurp(file):sub(1, 8))
    dl.plot.lines({loss = {10, 1, 0.1, 0.01}}, {file = file, logy = true})
    assert.equal(PNG_MAGIC, slurp(file):sub(1, 8))
    os.remove(file)
    -- the line breaks at NaN and inf: one more pen-up move than the whole line
    local svg = tmp(".svg")
    local function moves(values)
      dl.plot.lines({s = values}, {file = svg})
      local n = 0
      for _ in slurp(svg):gmatch("M%-?%d") do n = n + 1 end
      return n
    end
    local whole = moves({1, 2, 3, 4, 5})
    assert.equal(whole + 1, moves({1, 2, 0 / 0, 4, 5}))
    assert.equal(whole + 1, moves({1, 2, math.huge, 4, 5}))
    os.remove(svg)
  end)

  it("draws series named in y2 against the right axis", function()
    local file = tmp(".svg")
    dl.plot.lines({loss = {0.9, 0.5}, acc = {0.7, 0.85}}, {file = file, y2 = {"acc"}, y2label = "accuracy", ylabel = "loss"})
    local s = slurp(file)
    assert.truthy(s:find(">accuracy<", 1, true))
    os.remove(file)
  end)

  it("keeps quotes, underscores and carets in titles literal", function()
    local file = tmp(".svg")
    dl.plot.lines({["it's_a^b"] = {1, 2}}, {file = file, title = "model's \"loss\"_x^2"})
    local s = slurp(file)
    assert.truthy(s:find("it&apos;s_a^b", 1, true) or s:find("it's_a^b", 1, true), "series name")
    assert.truthy(s:find("_x^2", 1, true), "title")
    os.remove(file)
  end)

  it("writes into a path with spaces and quotes", function()
    local dir = tmp(" d'ir")
    os.execute("mkdir -p \"" .. dir .. "\"")
    local file = dir .. "/plot one.png"
    dl.plot.lines({y = {1, 2, 3}}, {file = file})
    assert.equal(PNG_MAGIC, slurp(file):sub(1, 8))
    os.remove(file)
    os.remove(dir)
  end)

  it("names gnuplot when it is missing", function()
    local file = tmp(".png")
    H.assert_error(function() dl.plot.lines({y = {1, 2}}, {file = file, gnuplot = "/nonexistent/gnuplot"}) end,
      "dl.plot.lines", "gnuplot not found", "gnuplot-nox")
    assert.is_nil(slurp(file))
  end)

  it("leaves an earlier plot intact when gnuplot fails", function()
    local file = tmp(".svg")
    dl.plot.lines({y = {1, 2}}, {file = file})
    local before = slurp(file)
    H.assert_error(function() dl.plot.lines({y = {3, 4}}, {file = file, gnuplot = "/nonexistent/gnuplot"}) end,
      "gnuplot not found")
    assert.equal(before, slurp(file))
    assert.is_nil(slurp(file .. ".part"))
    os.remove(file)
  end)

  it("reports gnuplot's message when it cannot write the file", function()
    H.assert_error(function() dl.plot.lines({y = {1, 2}}, {file = "/nonexistent-dir/x.png"}) end,
      "dl.plot.lines", "/nonexistent-dir/x.png")
  end)

  it("rejects bad series and options with named errors", function()
    local f = tmp(".png")
    H.assert_error(function() dl.plot.lines({y = {1}}) end, "dl.plot.lines", "bad argument #2")
    H.assert_error(function() dl.plot.lines({y = {1}}, {}) end, "option 'file'")
    H.assert_error(function() dl.plot.lines({y = {1}}, {file = "out.jpg"}) end, "out.jpg", ".png or .svg")
    H.assert_error(function() dl.plot.lines({y = {1}}, {file = f, colour = "red"}) end, "unknown option 'colour'")
    H.assert_error(function() dl.plot.lines({y = {1}}, {file = f, title = 3}) end, "option 'title'")
    H.assert_error(function() dl.plot.lines({y = {1}}, {file = f, width = 3}) end, "option 'width'")
    H.assert_error(function() dl.plot.lines(5, {file = f}) end, "bad argument #1", "number")
    H.assert_error(function() dl.plot.lines({}, {file = f}) end, "no series")
    H.assert_error(function() dl.plot.lines({e = {}}, {file = f}) end, "series 'e' is empty")
    H.assert_error(function() dl.plot.lines({s = {1, "x"}}, {file = f}) end, "series 's'[2]", "not a number")
    H.assert_error(function() dl.plot.lines({s = {x = {1, 2, 3}, y = {1, 2}}}, {file = f}) end,
      "series 's'", "3 x values and 2 y values")
    H.assert_error(function() dl.plot.lines({s = dl.zeros(2, 2)}, {file = f}) end, "1-D tensor", "[2,2]")
    H.assert_error(function() dl.plot.lines({s = {1, 0}}, {file = f, logy = true}) end, "logy", "positive")
    H.assert_error(function() dl.plot.lines({s = {1, 2}}, {file = f, y2 = {"t"}}) end, "y2", "'t'")
    H.assert_error(function() dl.plot.lines({[1.5] = {1}, s = {1}}, {file = f}) end)
    assert.is_nil(slurp(f))
  end)
end)
