-- scripts/seed/regularization.lua and scripts/seed/schedulers.lua run with
-- --quick: exit 0, print their result table with one row per setting /
-- schedule, and write the plots they name.
local DLUA = os.getenv("DLUA_BIN") or "bin/dlua"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- runs a script; returns its stdout (stderr is dropped: per-epoch progress)
-- and its exit status
local function run(script, args)
  local p = io.popen(string.format("%s %s %s 2>/dev/null; echo \"rc=$?\"", q(DLUA), q(script), args))
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return out, rc
end

local function exists(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local size = f:seek("end")
  f:close()
  return size > 0
end

-- the table row that starts with `name`: its remaining fields as a list
local function row(out, name)
  for line in out:gmatch("[^\n]+") do
    if line:sub(1, #name) == name then
      local rest, fields = line:sub(#name + 1), {}
      if rest:match("^%s") then
        for f in rest:gmatch("%S+") do fields[#fields + 1] = f end
        return fields
      end
    end
  end
  return nil
end

local function is_acc(s)
  local v = tonumber(s)
  return v ~= nil and v >= 0 and v <= 1
end

local function tmpdir(tag)
  local d = os.tmpname()
  os.remove(d)
  return d .. "-" .. tag
end

describe("scripts/seed/regularization.lua --quick", function()
  local dir = tmpdir("reg")
  local out, rc
  setup(function() out, rc = run("scripts/seed/regularization.lua", "--quick --out " .. q(dir)) end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("exits with status 0", function()
    assert.equal(0, rc, out)
  end)

  it("prints the table header", function()
    assert.truthy(out:match("setting%s+epochs%s+train acc%s+val acc%s+test acc"), out)
  end)

  it("prints one row per setting with epochs and three accuracies", function()
    for _, name in ipairs({"none", "dropout p=0.5", "weight decay (AdamW 0.1)", "label smoothing 0.1",
                           "early stopping (patience 3)"}) do
      local f = row(out, name)
      assert.truthy(f, "no row '" .. name .. "' in:\n" .. out)
      assert.equal(4, #f, name)
      assert.truthy(f[1]:match("^1"), name .. ": one epoch with --quick, got " .. f[1])
      for k = 2, 4 do assert.truthy(is_acc(f[k]), name .. ": " .. f[k]) end
    end
  end)

  it("learns something in one quick epoch (test accuracy well above chance)", function()
    local f = row(out, "none")
    assert.truthy(f and tonumber(f[4]) > 0.4, out)
  end)

  it("writes the validation-accuracy plot and prints its path", function()
    local path = dir .. "/val_accuracy.png"
    assert.truthy(out:find("plot: " .. path, 1, true), out)
    assert.is_true(exists(path))
  end)

  it("rejects an unknown argument with status 2", function()
    local _, code = run("scripts/seed/regularization.lua", "--bogus")
    assert.equal(2, code)
  end)
end)

describe("scripts/seed/schedulers.lua --quick", function()
  local dir = tmpdir("sched")
  local out, rc
  setup(function() out, rc = run("scripts/seed/schedulers.lua", "--quick --out " .. q(dir)) end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("exits with status 0", function()
    assert.equal(0, rc, out)
  end)

  it("prints the table header", function()
    assert.truthy(out:match("schedule%s+final lr%s+best val acc%s+final val acc%s+test acc"), out)
  end)

  it("prints one row per schedule with the final lr and three accuracies", function()
    for _, name in ipairs({"constant", "step", "plateau", "1cycle", "SGDR"}) do
      local f = row(out, name)
      assert.truthy(f, "no row '" .. name .. "' in:\n" .. out)
      assert.equal(4, #f, name)
      assert.truthy(tonumber(f[1]) and tonumber(f[1]) >= 0, name .. ": " .. f[1])
      for k = 2, 4 do assert.truthy(is_acc(f[k]), name .. ": " .. f[k]) end
    end
  end)

  it("ends 1cycle far below its peak and keeps the constant lr", function()
    assert.equal(0.05, tonumber(row(out, "constant")[1]))
    -- one epoch: OneCycleLR anneals to max_lr / 25 / 1e4 = 4e-7
    assert.truthy(tonumber(row(out, "1cycle")[1]) < 1e-5, out)
  end)

  it("writes the lr and validation-accuracy plots and prints their paths", function()
    for _, name in ipairs({"lr.png", "val_accuracy.png"}) do
      local path = dir .. "/" .. name
      assert.truthy(out:find("plot: " .. path, 1, true), out)
      assert.is_true(exists(path), path)
    end
  end)

  it("rejects a bad --epochs with status 2", function()
    local _, code = run("scripts/seed/schedulers.lua", "--epochs 0")
    assert.equal(2, code)
  end)
end)
