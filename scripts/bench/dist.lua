-- dist.lua — dl.dist on 2 ranks of this machine (Open MPI, shared memory):
--  * all-reduce bus bandwidth (bytes x 2(p-1)/p / time) of 4 KB, 1 MB and
--    64 MB float32 tensors, dl.dist.all_reduce against Open MPI's own
--    MPI_Allreduce called from C (allreduce_mpi.c) in the same run; dlua
--    as it runs by default (each collective first checks that every rank
--    called the same one: one more all-reduce of two numbers) and with
--    dl.dist.init({check = false}):
--      RESULT allreduce-<size> dlua <GB/s> GB/s   (and dlua_unchecked, mpi)
--  * the fashion MLP's epoch (fashion_mlp.lua) with 2 ranks x 1 thread
--    (nn.DistributedDataParallel, the same global batches) against 1 rank
--    x 2 threads:
--      RESULT fashion-mlp-ranks dlua_2x1 <s> s/epoch   (and ... 1x2 ...)
-- Run as `dlua dist.lua`: it starts mpirun itself (dlua --nproc 2).
-- Twin: dist.py (torch.distributed's gloo all_reduce at the same sizes).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local dl = require "dlua"

local SIZES = {{4096, 4000}, {1 << 20, 400}, {64 << 20, 8}} -- bytes, iterations a batch

local function label(bytes)
  return bytes >= 1 << 20 and (bytes >> 20) .. "MB" or (bytes >> 10) .. "KB"
end

if arg[1] == "--rank" then -- one of the ranks
  dl.dist.init()
  local world = dl.dist.size()
  for _, s in ipairs(SIZES) do for _, check in ipairs({true, false}) do
    dl.dist.init({check = check})
    local bytes, iters = s[1], s[2]
    local x = dl.ones(bytes // 4)
    dl.dist.all_reduce(x)
    local best = math.huge
    for _ = 1, 5 do
      dl.dist.barrier()
      local t0 = dl._time()
      for _ = 1, iters do dl.dist.all_reduce(x) end
      local t = dl.tensor({(dl._time() - t0) / iters}, {dtype = "float64"})
      dl.dist.all_reduce(t, "max")
      best = math.min(best, t:item())
    end
    dl.dist.print(string.format("RESULT allreduce-%s %s %.3f GB/s", label(bytes), check and "dlua" or "dlua_unchecked",
      bytes * 2 * (world - 1) / world / best / 1e9))
  end end
  return
end

local dlua = arg[-1]
local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  io.write((out:gsub("[^\n]*\n", function(l) return l:match("^RESULT ") and l or "" end)))
  if not ok then error("dist.lua: `" .. cmd .. "` failed:\n" .. out, 0) end
end
local root = os.getenv("USER") == "root" or io.popen("id -u"):read("l") == "0"
local mpirun = "mpirun -np 2" .. (root and " --allow-run-as-root" or "")

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))
local ok, err = pcall(function()
  run("mpicc -O2 -o " .. tmp .. "/allreduce_mpi " .. here .. "/allreduce_mpi.c")
  local sizes = {}
  for _, s in ipairs(SIZES) do sizes[#sizes + 1] = s[1] .. ":" .. s[2] end
  -- one thread a rank: the ranks take the cores
  local env = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "
  run(env .. mpirun .. " " .. tmp .. "/allreduce_mpi " .. table.concat(sizes, " "))
  run(env .. dlua .. " --nproc 2 " .. arg[0] .. " --rank")
  run(env .. "BENCH_THREADS=1 BENCH_CLOCK=wall " .. dlua .. " --nproc 2 " .. here .. "/fashion_mlp.lua --ddp --epochs 2")
  -- 1 rank x 2 threads: the same script, its figure renamed
  local p = io.popen("OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 BENCH_THREADS=2 BENCH_CLOCK=wall " .. dlua .. " " ..
    here .. "/fashion_mlp.lua --epochs 2 2>&1")
  local out = p:read("a")
  p:close()
  local s = out:match("RESULT fashion%-mlp dlua (%S+) s/epoch")
  if not s then error("dist.lua: fashion_mlp.lua at 2 threads printed no figure:\n" .. out, 0) end
  print(string.format("RESULT fashion-mlp-ranks 1x2 %s s/epoch", s))
end)
os.execute("rm -rf " .. tmp)
if not ok then error(err, 0) end
