-- Run under mpirun -np 2 by spec/dist_spec.lua: DistributedDataParallel's
-- edge cases. Prints "ok <case>" / "FAIL <case>: <why>" lines.
dl.dist.init({timeout = math.huge}) -- no watchdog: accepted
local rank = dl.dist.rank()
local nn = dl.nn
local function check(name, cond, why)
  print((cond and "ok " or "FAIL ") .. name .. (cond and "" or ": " .. tostring(why)))
end

-- the ranks wrap different models: an error on every rank, then the job goes on
local ok, err = pcall(nn.DistributedDataParallel,
  rank == 0 and nn.Sequential(nn.Linear(3, 2)) or nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)))
check("different parameter counts raise", not ok and tostring(err):find("the ranks wrap different models", 1, true),
  err)
ok, err = pcall(nn.DistributedDataParallel, nn.Linear(3, rank + 2))
check("different sizes raise", not ok and tostring(err):find("rank 0 has 2 parameters of 8 elements, rank 1 2 of 12",
  1, true), err)
-- as many elements (2x3 + 3, 8x1 + 1), other shapes
ok, err = pcall(nn.DistributedDataParallel, rank == 0 and nn.Linear(2, 3) or nn.Linear(8, 1))
check("different shapes raise", not ok and tostring(err):find("other shapes or dtypes", 1, true), err)

-- a parameter no rank uses keeps a nil grad with find_unused_parameters,
-- zeros without; one used on rank 0 only gets the average everywhere
local M = nn.Module:extend("TwoHeads")
function M:init() self.a = nn.Linear(3, 1); self.b = nn.Linear(3, 1); self.c = nn.Linear(3, 1) end
function M:forward(x) return rank == 0 and self.a(x) + self.b(x) or self.a(x) end
for _, find in ipairs({true, false}) do
  dl.manual_seed(1)
  local m = M()
  local ddp = nn.DistributedDataParallel(m, {find_unused_parameters = find})
  ddp(dl.ones(2, 3)):sum():backward()
  local tag = find and "find_unused_parameters" or "default"
  if find then
    check(tag .. ": unused everywhere keeps a nil grad", m.c.weight.grad == nil, m.c.weight.grad)
  else
    check(tag .. ": unused everywhere gets zeros", m.c.weight.grad ~= nil and m.c.weight.grad:abs():sum():item() == 0,
      m.c.weight.grad)
  end
  -- rank 0's gradient of b is 2 per weight (two rows of ones), rank 1's 0
  check(tag .. ": used on one rank gets the average", m.b.weight.grad ~= nil and
    m.b.weight.grad:sub(1):abs():max():item() == 0, m.b.weight.grad)
  ddp._reducer:close()
end

-- two wrapped models in one backward pass: refused with the fix named
do
  local a, b = nn.Linear(3, 3), nn.Linear(3, 1)
  local da, db = nn.DistributedDataParallel(a), nn.DistributedDataParallel(b)
  ok, err = pcall(function() db(da(dl.ones(2, 3))):sum():backward() end)
  check("two models in one backward raise", not ok and tostring(err):find("wrap one module holding both", 1, true),
    err)
  -- each alone still works afterwards
  a.weight.grad, b.weight.grad = nil, nil
  db(dl.ones(2, 3)):sum():backward()
  check("a model after the refusal", b.weight.grad ~= nil, b.weight.grad)
end

-- no_sync nests: the inner one leaves the outer's state
do
  local ddp = nn.DistributedDataParallel(nn.Linear(2, 1))
  ddp:no_sync(function()
    ddp:no_sync(function() end)
    check("no_sync nests", ddp._reducer:sync() == false, ddp._reducer:sync())
  end)
  check("no_sync restores", ddp._reducer:sync() == true, ddp._reducer:sync())
end
dl.dist.barrier()
print("done rank " .. rank)
