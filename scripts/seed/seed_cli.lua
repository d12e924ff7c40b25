-- seed_cli.lua — the command line every seed script shares:
--   dlua scripts/seed/<name>.lua [--quick] [--out DIR] [--<count> N ...]
-- where each script names its positive-integer options (epochs, steps, ...).
-- Bad arguments print the usage and exit with status 2. The output directory
-- (default runs/seed/<name>) is created.
local M = {}

function M.options(name, counts)
  counts = counts or {}
  local extra = {}
  for _, c in ipairs(counts) do extra[#extra + 1] = string.format(" [--%s N]", c) end
  local function usage(msg)
    io.stderr:write(name .. ".lua: " .. msg .. "\nusage: dlua scripts/seed/" .. name ..
      ".lua [--quick] [--out DIR]" .. table.concat(extra) .. "\n")
    os.exit(2)
  end
  local is_count = {}
  for _, c in ipairs(counts) do is_count["--" .. c] = c end
  local O = {quick = false, out = "runs/seed/" .. name}
  local i = 1
  while arg and arg[i] do
    local a = arg[i]
    if a == "--quick" then
      O.quick = true
    elseif a == "--out" then
      i = i + 1
      O.out = arg[i] or usage("--out needs a directory")
    elseif is_count[a] then
      i = i + 1
      local v = math.tointeger(tonumber(arg[i] or ""))
      if not v or v < 1 then usage(a .. " needs a positive integer") end
      O[is_count[a]] = v
    elseif a == "-h" or a == "--help" then
      usage("help")
    else
      usage("unknown argument " .. a)
    end
    i = i + 1
  end
  os.execute("mkdir -p '" .. O.out:gsub("'", "'\\''") .. "'")
  return O
end

return M
