-- dl.dist, nn.DistributedDataParallel and data.DistributedSampler. The
-- multi-process cases run scripts of spec/dist/ under `mpirun -np 2` (Open
-- MPI, from scripts/install-deps.sh); the single-process ones in this
-- process or a child.
local dl = require "dlua"
local H = require "spec.helper"

local bin = os.getenv("DLUA_BIN") or "bin/dlua"
local mpirun = "mpirun -np 2 --oversubscribe" .. (H.sh("id -u"):match("^0") and " --allow-run-as-root" or "")
-- a build without MPI (make MPI=0, the GPU machine's bundle build) has no
-- plugin: its specs say so and skip; with the plugin they must run
local lib = os.getenv("DLUA_LIBDIR") or "lib"
local plugin = io.open(lib .. "/libdlua_mpi.so", "rb")
if plugin then plugin:close() end
local describe_mpi = plugin and describe or pending

local function run2(script, args)
  return H.sh(mpirun .. " " .. bin .. " spec/dist/" .. script .. " " .. (args or ""))
end

-- lines "ok ..." and "FAIL ..." of a script's output: every case on both
-- ranks passed, and there were `want` of them
local function assert_all_ok(out, code, want)
  assert.equal(0, code, out)
  assert.is_nil(out:find("FAIL", 1, true), out)
  local n = select(2, out:gsub("\nok ", "")) + (out:match("^ok ") and 1 or 0)
  assert.equal(want, n, out)
end

-- ddp_equivalence.lua's "max diff" lines: 3 cases on each of `ranks`
-- ranks, every one below 1e-10; returns the output
local function assert_equivalent(ranks, out, code)
  assert.equal(0, code, out)
  local n = 0
  for opt, diff in out:gmatch("max diff (%S+) (%S+)") do
    assert.is_true(tonumber(diff) < 1e-10, opt .. " " .. diff)
    n = n + 1
  end
  assert.equal(3 * ranks, n, out)
  return out
end

describe_mpi("dl.dist over MPI, two ranks", function()
  it("runs every collective on every dtype, contiguous or not, as a local reference says", function()
    local out, code = run2("collectives.lua")
    -- a rank: 5 dtypes x (all_reduce of 4 ops (3 without avg for the
    -- 3 non-float dtypes), contiguous and not; broadcast from 2 roots; 2
    -- all_gather forms), 2 reduce_scatter, 4 mismatch cases, barrier
    assert_all_ok(out, code, 2 * (2 * (8 + 2 + 2) + 3 * (6 + 2 + 2) + 2 + 4 + 1))
  end)

  it("DistributedDataParallel equals one process on the global batch (SGD, Adam, no_sync) to 1e-10", function()
    local out = assert_equivalent(2, run2("ddp_equivalence.lua"))
    assert.matches("buckets 4", out) -- the small bucket size made several
  end)

  it("DistributedDataParallel: models that differ, unused parameters, two models in a pass, nested no_sync", function()
    local out, code = run2("ddp_cases.lua")
    assert_all_ok(out, code, 2 * 11)
  end)

  it("has rank-aware tools: sampler, EarlyStopping, progress, dl.save", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(os.execute("mkdir -p " .. dir))
    local out, code = run2("tools.lua", dir)
    H.sh("rm -rf " .. dir)
    assert_all_ok(out, code, 2 * 9)
  end)

  for _, case in ipairs({
    {"error", "dlua: rank 1: .*rank 1 fails on purpose"},
    {"exit", "dl.dist: rank 1 exits with status 3; ending every rank of the job"},
    {"kill", "rank 1 .*exited on signal 9"},
    {"hang", "rank 0: dl.dist.all_reduce did not complete within 2 s"},
  }) do
    it("ends the job with an error when a rank fails (" .. case[1] .. ")", function()
      local t0 = os.time()
      local out, code = run2("failure.lua", case[1] .. " 2")
      assert.is_true(os.time() - t0 < 15, "took " .. (os.time() - t0) .. " s")
      assert.are_not.equal(0, code)
      assert.matches(case[2], out)
      assert.is_nil(out:find("passed the collective", 1, true), out)
    end)
  end
end)

-- NCCL: one rank a GPU (at most 2), run where a GPU is (the parameterised
-- GPU machine check runs this spec too)
local gpus = dl.cuda.device_count()
local describe_gpu = gpus > 0 and plugin and describe or pending
describe_gpu("dl.dist over NCCL (CUDA tensors)", function()
  local np = math.min(gpus, 2)
  local function run_gpu(script)
    return H.sh(mpirun:gsub("%-np 2", "-np " .. np) .. " " .. bin .. " spec/dist/" .. script .. " cuda")
  end
  it("runs every collective on every dtype as on the CPU", function()
    local out, code = run_gpu("collectives.lua")
    -- as on the CPU; the 4 mismatch cases need two ranks
    assert_all_ok(out, code, np * (2 * (8 + 2 + 2) + 3 * (6 + 2 + 2) + 2 + 1 + (np > 1 and 4 or 0)))
  end)
  it("DistributedDataParallel on the GPU equals one process to 1e-10", function()
    assert_equivalent(np, run_gpu("ddp_equivalence.lua"))
  end)
end)

describe("dl.dist in one process", function()
  it("is rank 0 of 1 before init, and says init is missing", function()
    assert.equal(0, dl.dist.rank())
    assert.equal(1, dl.dist.size())
    assert.is_true(dl.dist.is_main())
    H.assert_error(function() dl.dist.all_reduce(dl.ones(2)) end, "dl.dist.all_reduce: dl.dist.init() has not been called")
    H.assert_error(function() dl.dist.barrier() end, "has not been called")
    H.assert_error(function() dl.nn.DistributedDataParallel(dl.nn.Linear(2, 2)) end, "call dl.dist.init() first")
  end)

  it("checks its arguments", function()
    H.assert_error(function() dl.dist.init({backend = "gloo"}) end, "unknown backend 'gloo'")
    H.assert_error(function() dl.dist.init({timeout = -1}) end, "timeout must be a positive")
    H.assert_error(function() dl.dist.init({bogus = 1}) end, "unknown option 'bogus'")
    H.assert_error(function() dl.dist.init(3) end, "options table expected")
    H.assert_error(function() dl.dist.all_reduce(3) end, "tensor expected")
    H.assert_error(function() dl.dist.all_reduce(dl.ones(2), "mean") end, "invalid option 'mean'")
    H.assert_error(function() dl.dist.all_reduce(dl.ones(2), {op = "mean"}) end, "unknown op 'mean'")
    H.assert_error(function() dl.dist.broadcast(dl.ones(2), 1) end, "root is not a rank")
    H.assert_error(function() dl.dist._reducer({}, 0) end, "bucket size must be positive")
    H.assert_error(function() dl.dist.init({timeout = 0 / 0}) end, "option 'timeout' must be a number, got NaN")
  end)

  local it_mpi = plugin and it or pending
  it_mpi("runs as a world of one without mpirun", function()
    local out, code = H.sh(bin .. [[ -e "dl.dist.init(); local t = dl.tensor({1.5, 2}); dl.dist.all_reduce(t, 'avg');
      print(dl.dist.rank(), dl.dist.size(), t[1]:item(), dl.dist.all_gather(t):size(1));
      local ok, e = pcall(dl.dist.all_reduce, dl.ones(2, {dtype = 'int64'}), 'avg'); print(e)
      local m = dl.nn.DistributedDataParallel(dl.nn.Linear(3, 1)); m(dl.ones(2, 3)):sum():backward()
      print(m.module.weight.grad:sum():item())
      local p = dl.nn.Parameter(dl.ones(2)); print(pcall(dl.dist._reducer, {p, p}, 64))
      dl.dist.finalize(); print(pcall(function() m(dl.ones(2, 3)):sum():backward() end))"]])
    assert.equal(0, code, out)
    assert.matches("0\t1\t1.5\t1", out)
    assert.matches("op 'avg' needs a floating%-point tensor, got int64", out)
    assert.matches("\n%-?%d", out)
    assert.matches("parameters 1 and 2 are the same tensor", out)
    assert.matches("dl.dist was finalized; the gradients cannot be averaged", out)
  end)

  it("says when it was built without MPI", function()
    if not plugin then -- the build itself has none
      H.assert_error(function() dl.dist.init() end, "dl.dist: built without MPI")
      return
    end
    local out, code = H.sh("DLUA_MPI_PLUGIN=/nonexistent/libdlua_mpi.so " .. bin .. " -e 'dl.dist.init()'")
    assert.are_not.equal(0, code)
    assert.matches("the MPI plugin failed to load", out)
  end)

  it("dlua --nproc checks its count", function()
    local out, code = H.sh(bin .. " --nproc zero x.lua")
    assert.are_not.equal(0, code)
    assert.matches("%-%-nproc needs a number of processes", out)
  end)

  it_mpi("dlua --nproc starts mpirun", function()
    local out, code = H.sh(bin .. " --nproc 2 -e 'dl.dist.init(); dl.dist.print(\"size\", dl.dist.size())'")
    assert.equal(0, code, out)
    local _, n = out:gsub("size\t2", "")
    assert.equal(1, n, out) -- dl.dist.print: rank 0 only
  end)
end)

describe("dl.data.DistributedSampler", function()
  local ds = dl.data.TensorDataset(dl.arange(1, 12):double()) -- 11 samples
  local function union(opts, replicas)
    local all = {}
    for r = 0, replicas - 1 do
      local o = {num_replicas = replicas, rank = r}
      for k, v in pairs(opts) do o[k] = v end
      local s = dl.data.DistributedSampler(ds, o)
      local idx = s:indices()
      assert.equal(#s, idx:numel())
      for i = 1, idx:numel() do all[#all + 1] = idx[i]:item() end
    end
    table.sort(all)
    return all
  end

  it("pads by repeating the start, as PyTorch does", function()
    local all = union({shuffle = false}, 3) -- 11 -> 12: index 1 twice
    assert.same({1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, all)
    local s = dl.data.DistributedSampler(ds, {num_replicas = 3, rank = 1, shuffle = false})
    assert.same({2, 5, 8, 11}, H.flat(s:indices()))
  end)

  it("drops the tail with drop_last", function()
    local all = union({shuffle = false, drop_last = true}, 3) -- 9 of 11
    assert.same({1, 2, 3, 4, 5, 6, 7, 8, 9}, all)
  end)

  it("shuffles the same way on every rank, by seed and epoch", function()
    local all = union({seed = 5}, 2)
    assert.equal(12, #all)
    local a = dl.data.DistributedSampler(ds, {num_replicas = 2, rank = 0, seed = 5})
    local b = dl.data.DistributedSampler(ds, {num_replicas = 2, rank = 0, seed = 5})
    assert.is_true(a:indices():equal(b:indices()))
    b:set_epoch(1)
    assert.is_false(a:indices():equal(b:indices()))
  end)

  it("gives each rank PyTorch's indices (spec/fixtures/sampler_reference.py)", function()
    for _, c in ipairs(require "spec.fixtures.sampler_reference") do
      local s = dl.data.DistributedSampler(dl.data.TensorDataset(dl.zeros(c.n)),
        {num_replicas = c.replicas, rank = c.rank, shuffle = false, drop_last = c.drop_last})
      local what = string.format("n=%d replicas=%d rank=%d drop_last=%s", c.n, c.replicas, c.rank, c.drop_last)
      assert.equal(c.len, #s, what)
      assert.same(c.indices, H.flat(s:indices()), what)
    end
  end)

  it("checks its arguments", function()
    H.assert_error(function() dl.data.DistributedSampler({}) end, "dataset expected")
    H.assert_error(function() dl.data.DistributedSampler(ds, {rank = 2, num_replicas = 2}) end, "option 'rank'")
    H.assert_error(function() dl.data.DistributedSampler(ds, {num_replicas = 0}) end, "num_replicas")
    H.assert_error(function() dl.data.DistributedSampler(ds, {shufle = true}) end, "unknown option 'shufle'")
    H.assert_error(function() dl.data.DistributedSampler(ds):set_epoch(1.5) end, "integer expected")
    local s = dl.data.DistributedSampler(ds, {num_replicas = 2, rank = 0})
    H.assert_error(function() dl.data.DataLoader(ds, {sampler = s, shuffle = true}) end, "exclude each other")
    H.assert_error(function() dl.data.DataLoader(ds, {sampler = 3}) end, "indices() method")
  end)
end)
