-- luarocks in this tree builds for Lua 5.4 (Debian's luarocks defaults to 5.1):
-- with lua_modules/ beside it this is a luarocks project, so a plain
-- `luarocks make` picks this version up
return "5.4"
