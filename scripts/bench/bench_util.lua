-- bench_util.lua — what the dlua side of every workload shares: the thread
-- setting run.sh asks for, the clock that fits it, and best-of timing.
--   BENCH_THREADS  dl.set_num_threads(n) (default 1)
--   BENCH_CLOCK    "cpu" (default at one thread: os.clock, so other load on
--                  a shared machine does not count) or "wall" (dl._time; the
--                  only honest clock once more than one thread runs)
-- A script finds this file beside itself:
--   package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
--   local B = require "bench_util"
local dl = require "dlua"

local B = {}

B.threads = math.tointeger(tonumber(os.getenv("BENCH_THREADS") or "1")) or 1
assert(B.threads >= 1, "bench_util: BENCH_THREADS must be a positive integer")
dl.set_num_threads(B.threads)
B.wall = os.getenv("BENCH_CLOCK") == "wall" or B.threads > 1
B.clock = B.wall and dl._time or os.clock

-- the least time per call of f over `batches` batches of `iters` calls,
-- after iters // 10 + 1 warm-up calls; sync (optional) runs before each
-- clock reading (a device synchronize)
function B.best_of(f, iters, batches, sync)
  for _ = 1, iters // 10 + 1 do f() end
  local best = math.huge
  for _ = 1, batches or 5 do
    if sync then sync() end
    local t0 = B.clock()
    for _ = 1, iters do f() end
    if sync then sync() end
    best = math.min(best, (B.clock() - t0) / iters)
  end
  return best
end

-- "--device cuda" (default cpu) from the command line; exits with status 2
-- and a message when the device is missing, so a GPU check can tell a
-- missing device from a failed run. Returns the device name and the
-- synchronize function (nil on the CPU).
function B.device(args)
  local device = "cpu"
  for i = 1, #args do
    if args[i] == "--device" then device = args[i + 1] end
  end
  if device == "cpu" then return device, nil end
  if device ~= "cuda" then
    io.stderr:write(string.format("%s: unknown device '%s' (cpu or cuda)\n", arg[0], tostring(device)))
    os.exit(2)
  end
  if not (dl.cuda and dl.cuda.is_available and dl.cuda.is_available()) then
    io.stderr:write(string.format("%s: --device cuda asked for, but this dlua has no CUDA device\n", arg[0]))
    os.exit(2)
  end
  return device, dl.cuda.synchronize
end

-- true when the command line holds flag
function B.flag(args, flag)
  for i = 1, #args do if args[i] == flag then return true end end
  return false
end

-- the number after flag on the command line, or default
function B.number(args, flag, default)
  for i = 1, #args do
    if args[i] == flag then return assert(tonumber(args[i + 1]), flag .. " needs a number") end
  end
  return default
end

return B
