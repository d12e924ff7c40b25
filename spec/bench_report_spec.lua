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

-- the first n cells (all when n is nil) of the table row whose first cell
-- is `label`
local function row(out, label, n)
  for line in out:gmatch("[^\n]+") do
    local cells = {}
    for c in line:gmatch("|%s*([^|]-)%s*%f[|]") do cells[#cells + 1] = c end
    if cells[1] == label then return table.move(cells, 1, n or #cells, 1, {}) end
  end
  error("no row " .. label .. " in:\n" .. out)
end

describe("bench report.lua", function()
  -- main table: workload, unit, dlua, PyTorch, ratio, floor, of floor, the
  -- same five at T threads, target
  it("reports the median of each side's runs", function()
    local out, code = report {
      "RESULT w dlua 3 ns/op", "RESULT w pytorch 40 ns/op",
      "RESULT w dlua 1 ns/op", "RESULT w pytorch 20 ns/op",
      "RESULT w dlua 2 ns/op", "RESULT w pytorch 30 ns/op",
    }
    assert.are.equal(0, code)
    assert.are.same({"w", "ns/op", "2", "30.0", "15.00", "-", "-"}, row(out, "w", 7))
  end)

  it("averages the middle two of an even number of runs", function()
    local out = report {
      "RESULT w dlua 1 ms", "RESULT w dlua 2 ms", "RESULT w dlua 4 ms", "RESULT w dlua 100 ms",
      "RESULT w pytorch 6 ms",
    }
    assert.are.same({"w", "ms", "3", "6", "2.00"}, row(out, "w", 5))
  end)

  it("turns a rate ratio round so that >1 still means dlua is faster", function()
    local out = report { "RESULT g dlua 20 GB/s", "RESULT g pytorch 80 GB/s" }
    assert.are.same({"g", "GB/s", "20.0", "80.0", "0.25"}, row(out, "g", 5))
  end)

  it("gives each _variant impl its own row, in first-seen order", function()
    local out = report {
      "RESULT m dlua 10 ns/op", "RESULT m dlua_out 8 ns/op",
      "RESULT m pytorch 12 ns/op", "RESULT m pytorch_out 16 ns/op",
    }
    assert.are.same({"m", "ns/op", "10.0", "12.0", "1.20"}, row(out, "m", 5))
    assert.are.same({"m (out)", "ns/op", "8", "16.0", "2.00"}, row(out, "m (out)", 5))
    assert.truthy(out:find("| m |", 1, true) < out:find("| m (out) |", 1, true))
  end)

  it("compares every dlua row with a reference impl", function()
    local out = report {
      "RESULT m cblas 5 ns/op", "RESULT m dlua 10 ns/op", "RESULT m dlua_out 6 ns/op",
      "RESULT m pytorch 12 ns/op",
    }
    assert.are.same({"dlua m vs cblas", "5", "10.0", "2.00", "ns/op"}, row(out, "dlua m vs cblas", 5))
    assert.are.same({"dlua m (out) vs cblas", "5", "6", "1.20", "ns/op"}, row(out, "dlua m (out) vs cblas", 5))
  end)

  it("marks failed runs, lists them and exits 1", function()
    local out, code = report {
      "FAIL b dlua timed out after 60s", "RESULT b pytorch 3 ms",
    }
    assert.are.equal(1, code)
    assert.are.same({"b", "ms", "failed", "3", "-"}, row(out, "b", 5))
    assert.truthy(out:find("- b dlua: timed out after 60s", 1, true))
  end)

  it("gives no ratio when the two sides report different units", function()
    local out = report { "RESULT q dlua 1 ms", "RESULT q pytorch 1 s" }
    assert.are.same({"q", "ms vs s", "1", "1", "-"}, row(out, "q", 5))
  end)

  it("ignores lines that are not well-formed RESULT or FAIL lines", function()
    local out, code = report {
      "warming up", "RESULT x dlua notanumber ns/op", "RESULT x dlua 4",
      "RESULT x dlua 2 ns/op", "RESULT x pytorch 4 ns/op",
    }
    assert.are.equal(0, code)
    assert.are.same({"x", "ns/op", "2", "4", "2.00"}, row(out, "x", 5))
  end)

  it("sets a GEMM workload against the sgemm rate of the same run", function()
    -- matmul-64: 2 * 64^3 = 524288 FLOPs at 100 GFLOP/s = 5243 ns
    local out = report {
      "RESULT matmul-1024 dlua 100 GFLOP/s", "RESULT matmul-1024 pytorch 90 GFLOP/s",
      "RESULT matmul-64 dlua 10000 ns/op", "RESULT matmul-64 pytorch 12000 ns/op",
    }
    assert.are.same({"matmul-64", "ns/op", "10000", "12000", "1.20", "5243", "0.52"}, row(out, "matmul-64", 7))
    assert.are.same({"matmul-1024", "GFLOP/s", "100", "90.0", "1.11", "100", "1.00"}, row(out, "matmul-1024", 7))
  end)

  it("divides by the best round's sgemm rate (other load only lowers a rate)", function()
    local out = report {
      "RESULT matmul-1024 dlua 60 GFLOP/s", "RESULT matmul-1024 dlua 100 GFLOP/s", "RESULT matmul-1024 dlua 80 GFLOP/s",
      "RESULT matmul-1024 pytorch 90 GFLOP/s",
      "RESULT matmul-64 dlua 10000 ns/op", "RESULT matmul-64 pytorch 12000 ns/op",
    }
    assert.are.same({"matmul-64", "ns/op", "10000", "12000", "1.20", "5243", "0.52"}, row(out, "matmul-64", 7))
    assert.truthy(out:find("its best round: 100 GFLOP/s", 1, true))
  end)

  it("shows dlua at T threads against PyTorch's best setting, named", function()
    local out = report {
      "RESULT matmul-1024 dlua 100 GFLOP/s", "RESULT matmul-1024 dlua@2 150 GFLOP/s",
      "RESULT matmul-1024 pytorch 90 GFLOP/s", "RESULT matmul-1024 pytorch@1+2 120 GFLOP/s",
      "RESULT matmul-1024 pytorch@2+1 140 GFLOP/s",
    }
    assert.truthy(out:find("| dlua 2 thr | PyTorch best 2 thr |", 1, true))
    local cells = row(out, "matmul-1024")
    assert.are.same({"150", "140 (2+1)", "1.07"}, {cells[8], cells[9], cells[10]})
  end)

  it("judges the issue's targets", function()
    local out = report {
      "RESULT tiny-op dlua 200 ns/op", "RESULT tiny-op pytorch 1000 ns/op",
      "RESULT matmul-64 dlua 10000 ns/op", "RESULT matmul-64 pytorch 12000 ns/op",
    }
    local tiny, mm = row(out, "tiny-op"), row(out, "matmul-64")
    assert.are.equal(">= 4x: met", tiny[#tiny])
    assert.are.equal(">= 2x: not met", mm[#mm])
  end)

  it("gives the accuracy difference in points", function()
    local out = report { "RESULT acc dlua 86.7 %", "RESULT acc pytorch 86.3 %" }
    assert.are.same({"acc", "%", "86.7", "86.3", "+0.40 pt"}, row(out, "acc", 5))
  end)

  it("needs the input file as its argument", function()
    local p = assert(io.popen("lua5.4 scripts/bench/report.lua 2>&1"))
    local out = p:read("a")
    local _, _, code = p:close()
    assert.are_not.equal(0, code)
    assert.truthy(out:find("usage: lua5.4 report.lua RAW", 1, true))
  end)
end)
