-- bench_report_spec.lua — scripts/bench/report.lua, the table of `make bench`:
-- medians, ratio direction, variant and reference rows, failed runs.

-- runs report.lua on RESULT/FAIL lines; returns its output and exit code
local function report(lines)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  local p = assert(io.popen("lua5.4 scripts/bench/report.lua " .. path .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  os.remove(path)
  return out, code
end

-- the table row whose first cell is `label`, as a list of cells
local function row(out, label)
  for line in out:gmatch("[^\n]+") do
    local cells = {}
    for c in line:gmatch("|%s*([^|]-)%s*%f[|]") do cells[#cells + 1] = c end
    if cells[1] == label then return cells end
  end
  error("no row " .. label .. " in:\n" .. out)
end

describe("bench report.lua", function()
  it("reports the median of each side's runs", function()
    local out, code = report {
      "RESULT w dlua 3 ns/op", "RESULT w pytorch 40 ns/op",
      "RESULT w dlua 1 ns/op", "RESULT w pytorch 20 ns/op",
      "RESULT w dlua 2 ns/op", "RESULT w pytorch 30 ns/op",
    }
    assert.are.equal(0, code)
    assert.are.same({"w", "2.00", "30.0", "15.00", "ns/op"}, row(out, "w"))
  end)

  it("averages the middle two of an even number of runs", function()
    local out = report {
      "RESULT w dlua 1 ms", "RESULT w dlua 2 ms", "RESULT w dlua 4 ms", "RESULT w dlua 100 ms",
      "RESULT w pytorch 6 ms",
    }
    assert.are.same({"w", "3.00", "6.00", "2.00", "ms"}, row(out, "w"))
  end)

  it("turns a rate ratio round so that >1 still means dlua is faster", function()
    local out = report { "RESULT g dlua 20 GB/s", "RESULT g pytorch 80 GB/s" }
    assert.are.same({"g", "20.0", "80.0", "0.25", "GB/s"}, row(out, "g"))
  end)

  it("gives each _variant impl its own row, in first-seen order", function()
    local out = report {
      "RESULT m dlua 10 ns/op", "RESULT m dlua_out 8 ns/op",
      "RESULT m pytorch 12 ns/op", "RESULT m pytorch_out 16 ns/op",
    }
    assert.are.same({"m", "10.0", "12.0", "1.20", "ns/op"}, row(out, "m"))
    assert.are.same({"m (out)", "8.00", "16.0", "2.00", "ns/op"}, row(out, "m (out)"))
    assert.truthy(out:find("| m |", 1, true) < out:find("| m (out) |", 1, true))
  end)

  it("compares every dlua row with a reference impl", function()
    local out = report {
      "RESULT m cblas 5 ns/op", "RESULT m dlua 10 ns/op", "RESULT m dlua_out 6 ns/op",
      "RESULT m pytorch 12 ns/op",
    }
    assert.are.same({"m vs cblas", "5.00", "10.0", "2.00", "ns/op"}, row(out, "m vs cblas"))
    assert.are.same({"m (out) vs cblas", "5.00", "6.00", "1.20", "ns/op"},
      row(out, "m (out) vs cblas"))
  end)

  it("marks failed runs, lists them and exits 1", function()
    local out, code = report {
      "FAIL b dlua timed out after 60s", "RESULT b pytorch 3 ms",
    }
    assert.are.equal(1, code)
    assert.are.same({"b", "failed", "3.00", "-", "ms"}, row(out, "b"))
    assert.truthy(out:find("- b dlua: timed out after 60s", 1, true))
  end)

  it("gives no ratio when the two sides report different units", function()
    local out = report { "RESULT q dlua 1 ms", "RESULT q pytorch 1 s" }
    assert.are.same({"q", "1.00", "1.00", "-", "ms vs s"}, row(out, "q"))
  end)

  it("ignores lines that are not well-formed RESULT or FAIL lines", function()
    local out, code = report {
      "warming up", "RESULT x dlua notanumber ns/op", "RESULT x dlua 4",
      "RESULT x dlua 2 ns/op", "RESULT x pytorch 4 ns/op",
    }
    assert.are.equal(0, code)
    assert.are.same({"x", "2.00", "4.00", "2.00", "ns/op"}, row(out, "x"))
  end)

  it("needs the input file as its argument", function()
    local p = assert(io.popen("lua5.4 scripts/bench/report.lua 2>&1"))
    local out = p:read("a")
    local _, _, code = p:close()
    assert.are_not.equal(0, code)
    assert.truthy(out:find("usage: lua5.4 report.lua RAW", 1, true))
  end)
end)
