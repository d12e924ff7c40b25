-- Run under mpirun -np N by spec/dist_spec.lua: every collective of dl.dist
-- on every dtype, contiguous and not, against the value computed locally
-- from what each rank is known to hold. Prints "ok <case>" or
-- "FAIL <case>: <why>" lines; the spec counts them. arg[1] "cuda": the
-- tensors live on cuda:<rank> (NCCL), else on the CPU (MPI).
dl.dist.init({timeout = 60})
local rank, world = dl.dist.rank(), dl.dist.size()
local device = arg[1] == "cuda" and "cuda:" .. rank % dl.cuda.device_count() or "cpu"

local function check(name, cond, why)
  print((cond and "ok " or "FAIL ") .. name .. (cond and "" or ": " .. tostring(why)))
end

local function equal(a, b)
  a, b = a:cpu(), b:cpu()
  return a.dtype == b.dtype and a:dim() == b:dim() and a:double():sub(b:double()):abs():max():item() == 0
end

-- rank r holds base * (r + 1) (integers: base + r, bool: (i + r) % 2 == 0)
local function held(dtype, r)
  local base = dl.arange(1, 13):view(3, 4):to(device)
  if dtype == "bool" then return (base + r):remainder(2):eq(0) end
  if dtype == "uint8" or dtype == "int64" then return (base + r):to(dtype) end
  return (base * (r + 1)):to(dtype)
end

for _, dt in ipairs({"float32", "float64", "int64", "uint8", "bool"}) do
  for _, op in ipairs({"sum", "avg", "max", "min"}) do
    local float = dt == "float32" or dt == "float64"
    if op ~= "avg" or float then
      -- expected: reduce the held values of every rank locally
      local want = held(dt, 0)
      for r = 1, world - 1 do
        local h = held(dt, r)
        if dt == "bool" then
          want = op == "min" and want:logical_and(h) or want:logical_or(h)
        elseif op == "sum" or op == "avg" then
          want = (want + h):to(dt)
        elseif op == "max" then
          want = dl.maximum(want, h)
        else
          want = dl.minimum(want, h)
        end
      end
      if op == "avg" then want = want / world end
      local t = held(dt, rank)
      dl.dist.all_reduce(t, {op = op})
      check(string.format("all_reduce %s %s", dt, op), equal(t, want), t)
      -- the same through a transposed (non-contiguous) view, in place
      local base = held(dt, rank):t():contiguous()
      local v = base:t()
      dl.dist.all_reduce(v, op)
      check(string.format("all_reduce %s %s non-contiguous", dt, op), equal(base:t(), want), base)
    end
  end
  for root = 0, world - 1 do
    local t = held(dt, rank)
    local same = dl.dist.broadcast(t, root)
    check(string.format("broadcast %s root %d", dt, root), same == t and equal(t, held(dt, root)), t)
  end
  local g = dl.dist.all_gather(held(dt, rank):t())
  local ok = g:size(1) == world
  for r = 0, world - 1 do ok = ok and equal(g[r + 1], held(dt, r):t()) end
  check("all_gather " .. dt, ok, g)
  local list = dl.dist.all_gather({}, held(dt, rank))
  ok = #list == world
  for r = 0, world - 1 do ok = ok and equal(list[r + 1], held(dt, r)) end
  check("all_gather list " .. dt, ok, #list)
end

-- reduce_scatter: rank r gets chunk r of the sum
do
  local rows = 2 * world
  local function mine(r) return dl.arange(rows * 3):view(rows, 3):double():to(device) * (r + 1) end
  local sum = mine(0) * 0
  for r = 0, world - 1 do sum = sum + mine(r) end
  local got = dl.dist.reduce_scatter(mine(rank))
  check("reduce_scatter sum", equal(got, sum:narrow(1, rank * 2 + 1, 2)), got)
  local out = dl.zeros(2, 3, {dtype = "float64", device = device})
  dl.dist.reduce_scatter(out, mine(rank), "avg")
  check("reduce_scatter avg into out", equal(out, sum:narrow(1, rank * 2 + 1, 2) / world), out)
end

-- mismatched calls are caught on every rank and the job goes on (a world
-- of one has no other rank to disagree)
if world > 1 then
  local function ones(n, dt) return dl.ones(n, {dtype = dt or "float32", device = device}) end
  local ok, err = pcall(dl.dist.all_reduce, ones(rank + 2))
  check("mismatched shapes raise", not ok and err:find("ranks disagree") and err:find("rank 1"), err)
  ok, err = pcall(dl.dist.all_reduce, ones(3, rank == 0 and "float32" or "float64"))
  check("mismatched dtypes raise", not ok and err:find("float64"), err)
  if rank == 0 then
    ok, err = pcall(dl.dist.broadcast, ones(2), 0)
  else
    ok, err = pcall(dl.dist.all_reduce, ones(2))
  end
  check("mismatched operations raise", not ok and err:find("broadcast") and err:find("all_reduce"), err)
  local t = ones(4)
  dl.dist.all_reduce(t)
  check("a collective after a mismatch", equal(t, dl.ones(4) * world), t)
end

dl.dist.barrier()
check("barrier", true)
print("done rank " .. rank)
