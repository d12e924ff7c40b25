-- The seed lecture's experiments as scripts (scripts/seed/): each runs with
-- --quick through the dlua binary, prints its result table and writes its
-- plots. Here: linear_regression.lua, xor.lua, regression_mlp.lua.
local DLUA = os.getenv("DLUA_BIN") or "bin/dlua"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- runs a seed script; returns its output (stdout and stderr) and exit status
local function run(script, args)
  local p = io.popen(string.format("%s scripts/seed/%s %s 2>&1; echo \"rc=$?\"", q(DLUA), script, args))
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return out:gsub("rc=%d+%s*$", ""), rc
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

-- the numbers of the table row that starts with label
local function row(out, label)
  for line in out:gmatch("[^\n]+") do
    if line:sub(1, #label) == label then
      local nums = {}
      for v in line:sub(#label + 1):gmatch("%S+") do nums[#nums + 1] = tonumber(v) or v end
      return nums
    end
  end
  return nil
end

local function tmpdir(tag)
  local d = os.tmpname()
  os.remove(d)
  d = d .. "-" .. tag
  return d
end

describe("scripts/seed/linear_regression.lua", function()
  local dir = tmpdir("linreg")
  local out, rc
  local function quick()
    if not out then out, rc = run("linear_regression.lua", "--quick --out " .. q(dir)) end
    return out, rc
  end
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("exits 0 with --quick", function()
    local o, c = quick()
    assert.equal(0, c, o)
  end)

  it("prints the least-squares answer near theta = [2, 3]", function()
    local o = quick()
    local b, w = o:match("least squares: theta = %[([-%d.]+), ([-%d.]+)%]")
    assert.truthy(b, o)
    assert.truthy(math.abs(tonumber(b) - 2) < 0.1 and math.abs(tonumber(w) - 3) < 0.02, o)
  end)

  it("prints one row per optimiser with raw and z-scored theta and loss", function()
    local o = quick()
    assert.truthy(o:find("optimiser%s+raw b%s+raw w%s+raw loss%s+z b%s+z w%s+z loss"), o)
    for _, name in ipairs({"SGD momentum 0.6", "Nesterov 0.8", "Adagrad", "RMSprop", "Adam"}) do
      local r = row(o, name)
      assert.truthy(r, name .. " missing:\n" .. o)
      assert.equal(6, #r, name)
      for i = 1, 6 do assert.equal("number", type(r[i]), name) end
    end
    local sgd = row(o, "SGD  ")
    assert.truthy(sgd and #sgd == 6, o)
  end)

  it("converges to theta ~ [2, 3] with Nesterov on z-scored x in the quick run", function()
    local r = row(quick(), "Nesterov 0.8")
    assert.truthy(math.abs(r[4] - 2) < 0.05 and math.abs(r[5] - 3) < 0.02, table.concat(r, " "))
    -- and z-scoring beats raw x for plain SGD after the same steps
    local s = row(quick(), "SGD  ")
    assert.truthy(s[6] < s[3], table.concat(s, " "))
  end)

  it("writes the loss and trajectory plots it prints", function()
    local o = quick()
    for _, f in ipairs({"linear_regression_raw.png", "linear_regression_zscored.png", "linear_regression_paths.png"}) do
      local path = dir .. "/" .. f
      assert.truthy(o:find("plot: " .. path, 1, true), o)
      assert.truthy(file_size(path) > 0, path)
    end
  end)

  it("rejects an unknown argument with a usage message and status 2", function()
    local o, c = run("linear_regression.lua", "--bogus")
    assert.equal(2, c)
    assert.truthy(o:find("unknown argument --bogus", 1, true), o)
    o, c = run("linear_regression.lua", "--steps 0")
    assert.equal(2, c)
    assert.truthy(o:find("--steps needs a positive integer", 1, true), o)
  end)
end)

describe("scripts/seed/xor.lua", function()
  local dir = tmpdir("xor")
  local out, rc
  local function quick()
    if not out then out, rc = run("xor.lua", "--quick --out " .. q(dir)) end
    return out, rc
  end
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("exits 0 with --quick", function()
    local o, c = quick()
    assert.equal(0, c, o)
  end)

  it("prints a failure count per initialisation", function()
    local o = quick()
    assert.truthy(o:find("init%s+failures%s+median loss%s+worst loss%s+failed seeds"), o)
    for _, label in ipairs({"U(-10, 10), zero bias", "N(0, 1/sqrt(fan_in)), zero bias"}) do
      local r = row(o, label)
      assert.truthy(r, label .. " missing:\n" .. o)
      local f, n = tostring(r[1]):match("^(%d+)/(%d+)$")
      assert.truthy(f, o)
      assert.equal(4, tonumber(n))
      assert.truthy(tonumber(f) <= 4)
      -- BCE is positive; the worst run's loss is at least the median
      assert.truthy(r[2] > 0 and r[3] >= r[2], o)
    end
  end)

  it("gives the same table on a rerun (fixed seeds)", function()
    local o = quick()
    local again = run("xor.lua", "--quick --out " .. q(dir))
    assert.equal(o, again)
  end)

  it("writes the loss plot it prints", function()
    local o = quick()
    local path = dir .. "/xor_loss.png"
    assert.truthy(o:find("plot: " .. path, 1, true), o)
    assert.truthy(file_size(path) > 0, path)
  end)

  it("rejects a bad --seeds with status 2", function()
    local o, c = run("xor.lua", "--seeds x")
    assert.equal(2, c)
    assert.truthy(o:find("--seeds needs a positive integer", 1, true), o)
  end)
end)

describe("scripts/seed/regression_mlp.lua", function()
  local dir = tmpdir("regmlp")
  local out, rc
  local function quick()
    if not out then out, rc = run("regression_mlp.lua", "--quick --out " .. q(dir)) end
    return out, rc
  end
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("exits 0 with --quick", function()
    local o, c = quick()
    assert.equal(0, c, o)
  end)

  it("prints train and validation loss per epoch, and the validation loss falls", function()
    local o = quick()
    assert.truthy(o:find("epoch%s+train loss%s+val loss%s+lr"), o)
    local rows = {}
    for e, tr, va in o:gmatch("\n%s*(%d+)%s+([%d.]+)%s+([%d.]+)%s+[%d.e+-]+") do
      rows[#rows + 1] = {tonumber(e), tonumber(tr), tonumber(va)}
    end
    assert.equal(3, #rows, o)
    for i = 1, 3 do assert.equal(i, rows[i][1]) end
    assert.truthy(rows[3][3] < rows[1][3], o)
    -- the final RMSE is the square root of the last validation MSE
    local rmse = tonumber(o:match("final validation RMSE: ([%d.]+)"))
    assert.truthy(rmse, o)
    assert.truthy(math.abs(rmse - math.sqrt(rows[3][3])) < 1e-3, o)
  end)

  it("trains on the 80/20 split of the quick data", function()
    assert.truthy(quick():find("1600 train, 400 validation", 1, true))
  end)

  it("writes the train/val curve plot it prints", function()
    local o = quick()
    local path = dir .. "/regression_mlp_curves.png"
    assert.truthy(o:find("plot: " .. path, 1, true), o)
    assert.truthy(file_size(path) > 0, path)
  end)

  it("rejects a bad --epochs with status 2", function()
    local o, c = run("regression_mlp.lua", "--epochs -1")
    assert.equal(2, c)
    assert.truthy(o:find("--epochs needs a positive integer", 1, true), o)
  end)
end)
