-- readme_table.lua README TABLE — puts the table `make bench` printed into
-- README.md between the lines "<!-- bench:begin -->" and
-- "<!-- bench:end -->" (and nowhere else); a README without both markers
-- is left alone. Plain Lua 5.4.
local readme, table_path = assert(arg[1]), assert(arg[2])
local BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

local f = assert(io.open(readme, "rb"))
local text = f:read("a")
f:close()
local b = text:find(BEGIN, 1, true)
local e = b and text:find(END, b, true)
if not (b and e) then
  io.stderr:write("readme_table: no " .. BEGIN .. " / " .. END .. " markers in " .. readme .. ", left alone\n")
  os.exit(0)
end
f = assert(io.open(table_path, "rb"))
local tbl = f:read("a"):gsub("%s+$", "")
f:close()
local new = text:sub(1, b + #BEGIN - 1) .. "\n" .. tbl .. "\n" .. text:sub(e)
if new ~= text then
  local tmp = readme .. ".tmp"
  f = assert(io.open(tmp, "wb"))
  f:write(new)
  f:close()
  assert(os.rename(tmp, readme))
end
