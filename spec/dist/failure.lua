-- Run under mpirun -np 2 by spec/dist_spec.lua with a mode argument: rank 1
-- fails in that way while rank 0 waits in a collective; the job must end
-- with an error (never hang). arg[1]: error | kill | hang | exit
dl.dist.init({timeout = tonumber(arg[2]) or 3})
local mode = arg[1]
if dl.dist.rank() == 1 then
  if mode == "error" then error("rank 1 fails on purpose") end
  if mode == "kill" then os.execute("kill -9 $PPID; sleep 5") end
  if mode == "hang" then os.execute("sleep 20") end
  if mode == "exit" then os.exit(3) end
end
dl.dist.all_reduce(dl.ones(1000))
print("rank " .. dl.dist.rank() .. " passed the collective")
