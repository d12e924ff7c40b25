-- The dlua program: options, `arg`, stdin, exit statuses and error reports,
-- compared with what the `lua` program does.
local DLUA = os.getenv("DLUA_BIN") or "bin/dlua"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

-- runs dlua with the given (unquoted) arguments and optional stdin text;
-- returns stdout, stderr, exit code
local function run(args, stdin)
  local out, err, inp = os.tmpname(), os.tmpname(), os.tmpname()
  write(inp, stdin or "")
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = q(a) end
  local cmd = string.format("%s %s <%s >%s 2>%s", q(DLUA), table.concat(quoted, " "), q(inp), q(out), q(err))
  local _, _, code = os.execute(cmd)
  local o, e = slurp(out), slurp(err)
  os.remove(out)
  os.remove(err)
  os.remove(inp)
  return o, e, code
end

local tmpfiles = {}
local function script(text)
  local base = os.tmpname() -- made empty by os.tmpname: removed with the script
  local path = base .. ".lua"
  tmpfiles[#tmpfiles + 1] = base
  tmpfiles[#tmpfiles + 1] = path
  return write(path, text)
end

teardown(function()
  for _, p in ipairs(tmpfiles) do os.remove(p) end
end)

describe("dlua script.lua args", function()
  it("sets arg as lua does: script at 0, program and options before it", function()
    local s = script("print(#arg, arg[0], arg[1], arg[2], arg[-1], arg[-2], arg[-3])")
    local out, err, code = run({"-e", "x = 1", s, "a", "b c"})
    assert.equal(0, code, err)
    assert.equal(string.format("2\t%s\ta\tb c\tx = 1\t-e\t%s\n", s, DLUA), out)
  end)

  it("passes the arguments to the script as ...", function()
    local s = script("print(select('#', ...), ...)")
    local out, _, code = run({s, "1", "", "three"})
    assert.equal(0, code)
    assert.equal("3\t1\t\tthree\n", out)
  end)

  it("preloads the library as global dl and require 'dlua'", function()
    local s = script("print(dl == require('dlua'), tostring(dl.ones(2)))")
    local out = run({s})
    assert.equal("true\ttensor([1., 1.])\n", out)
  end)

  it("exits 0 after a script that returns normally", function()
    local _, err, code = run({script("return 1, 2")})
    assert.equal(0, code)
    assert.equal("", err)
  end)

  it("exits promptly with closed tensors among thousands of live ones", function()
    -- the exit releases every live tensor; a compiled form of that loop
    -- once spun forever when a closed tensor headed the list
    local path = script([[
      local keep = dl.arange(3000):split(1)
      local a, b = dl.zeros(2), dl.zeros(2)
      a:close()
      b:close()
      print(#keep)
    ]])
    local out = os.tmpname()
    local _, _, code = os.execute(string.format("timeout 60 %s %s >%s", q(DLUA), q(path), q(out)))
    local printed = slurp(out)
    os.remove(out)
    assert.equal(0, code) -- 124: still running after a minute
    assert.equal("3000\n", printed)
  end)

  it("exits 1 with the message and a traceback on an uncaught error", function()
    local s = script("local function inner() error('boom') end\ninner()\n")
    local out, err, code = run({s})
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("^dlua: " .. s:gsub("%p", "%%%0") .. ":1: boom\n"), err)
    assert.truthy(err:find("stack traceback:", 1, true))
    assert.truthy(err:find("in local 'inner'", 1, true) or err:find("in function 'inner'", 1, true), err)
  end)

  it("reports engine errors raised through the binding", function()
    local _, err, code = run({script("dl.zeros(2, -1)")})
    assert.equal(1, code)
    assert.truthy(err:find("negative size", 1, true), err)
    assert.truthy(err:find("stack traceback:", 1, true))
  end)

  it("reports a non-string error object", function()
    local _, err, code = run({script("error({})")})
    assert.equal(1, code)
    assert.truthy(err:find("(error object is a table value)", 1, true), err)
  end)

  it("reports a syntax error in the script without running it", function()
    local s = script("print('ran')\nx = = 1\n")
    local out, err, code = run({s})
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find(":2: unexpected symbol near '='", 1, true), err)
  end)

  it("reports a missing script file", function()
    local out, err, code = run({"/nonexistent/dir/nothing.lua"})
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("dlua: cannot open /nonexistent/dir/nothing.lua\n", err:gsub(":[^:]*\n$", "\n"))
  end)

  it("treats '--' as the end of the options", function()
    local s = script("print(arg[0], arg[1])")
    local out, _, code = run({"--", s, "-v"})
    assert.equal(0, code)
    assert.equal(s .. "\t-v\n", out)
  end)
end)

describe("the built-in Lua library", function()
  it("keeps its chunk names and line numbers (bytecode with debug information)", function()
    local out, err, code = run({"-e", [[
      local info = debug.getinfo(require("dlua.errors").strip, "S")
      io.write(info.source, " ", info.linedefined)
    ]]})
    assert.equal(0, code, err)
    local source, line = out:match("^(%S+) (%d+)$")
    assert.equal("=[dlua]/dlua.errors.lua", source)
    assert.is_true(tonumber(line) > 1)
  end)

  it("gives library files and lines in a traceback", function()
    local _, err, code = run({"-e", "dl.nn.Linear(2, 'x')"})
    assert.equal(1, code)
    assert.truthy(err:find("dl.nn.Linear: bad argument #2", 1, true), err)
    assert.truthy(err:find("%[dlua%]/dlua%.[%w_.]+%.lua:%d+: in "), err)
  end)
end)

describe("dlua -e", function()
  it("runs each statement in order, then exits without a REPL", function()
    local out, err, code = run({"-e", "x = 6", "-e", "print(x * 7)"}, "print('stdin ignored')\n")
    assert.equal(0, code, err)
    assert.equal("42\n", out)
  end)

  it("accepts the statement glued to the option", function()
    local out = run({"-eprint(1 + 1)"})
    assert.equal("2\n", out)
  end)

  it("runs before the script, which still runs", function()
    local s = script("print(greeting)")
    local out = run({"-e", "greeting = 'hi'", s})
    assert.equal("hi\n", out)
  end)

  it("exits 1 on an error and skips the rest", function()
    local s = script("print('not reached')")
    local out, err, code = run({"-e", "error('bad stat')", s})
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("^dlua: %(command line%):1: bad stat"), err)
  end)

  it("exits 1 on a syntax error", function()
    local _, err, code = run({"-e", "x ="})
    assert.equal(1, code)
    assert.truthy(err:find("(command line)", 1, true), err)
  end)

  it("needs an argument", function()
    local out, err, code = run({"-e"})
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("'-e' needs argument", 1, true), err)
    assert.truthy(err:find("usage:", 1, true))
  end)
end)

describe("dlua -l", function()
  it("requires a module into a global of its name", function()
    local out, _, code = run({"-l", "string", "-e", "print(string.rep('ab', 2))"})
    assert.equal(0, code)
    assert.equal("abab\n", out)
  end)

  it("accepts g=mod to choose the global", function()
    local out = run({"-l", "D=dlua", "-e", "print(D == dl)"})
    assert.equal("true\n", out)
  end)

  it("exits 1 when the module is missing", function()
    local _, err, code = run({"-l", "no_such_module_h5"})
    assert.equal(1, code)
    assert.truthy(err:find("module 'no_such_module_h5' not found", 1, true), err)
  end)
end)

describe("dlua -v", function()
  it("prints the version and exits", function()
    local out, _, code = run({"-v"}, "print('stdin ignored')\n")
    assert.equal(0, code)
    assert.truthy(out:find("^dlua %d+%.%d+%.%d+ %(Lua 5%.4%.%d+%)"), out)
    assert.falsy(out:find("stdin ignored", 1, true))
  end)
end)

describe("dlua with stdin", function()
  it("'-' runs stdin as the script, with arguments", function()
    local out, err, code = run({"-", "a", "b"}, "print(arg[0], ...)\n")
    assert.equal(0, code, err)
    assert.equal("-\ta\tb\n", out)
  end)

  it("runs stdin as a script when it is not a terminal", function()
    local out, _, code = run({}, "local t = dl.arange(3)\nprint(t)\n")
    assert.equal(0, code)
    assert.equal("tensor([0, 1, 2])\n", out)
  end)

  it("exits 1 when the stdin script fails", function()
    local _, err, code = run({"-"}, "error('from stdin')\n")
    assert.equal(1, code)
    assert.truthy(err:find("from stdin", 1, true), err)
  end)
end)

describe("dlua -i", function()
  it("runs the script, then reads statements; expressions print", function()
    local s = script("x = dl.tensor({1.5, 2})")
    local out, err, code = run({"-i", s}, "x\n=1 + 1\nprint('done')\n")
    assert.equal(0, code, err)
    assert.truthy(out:find("^dlua %d"), out) -- -i shows the version, as lua does
    assert.truthy(out:find("> tensor([1.5000, 2.0000])\n", 1, true), out)
    assert.truthy(out:find("> 2\n", 1, true), out)
    assert.truthy(out:find("> done\n", 1, true), out)
  end)

  it("continues incomplete statements over several lines", function()
    local out = run({"-i"}, "for i = 1, 3 do\nio.write(i, ' ')\nend\nprint()\n")
    assert.truthy(out:find(">> >> 1 2 3 ", 1, true), out)
  end)

  it("shows plain tables and keeps going after an error", function()
    local out, err, code = run({"-i"}, "dl.zeros(2, 3):size()\nerror('oops')\n{a = 1, 'x', {2}}\n")
    assert.equal(0, code)
    assert.truthy(out:find("{2, 3}", 1, true), out)
    assert.truthy(out:find('{"x", {2}, a = 1}', 1, true), out)
    assert.truthy(err:find("stdin:1: oops", 1, true), err)
    assert.falsy(err:find("dlua: stdin", 1, true), err) -- no program name in the REPL
  end)

  it("reports a syntax error and reads on", function()
    local out, err = run({"-i"}, "x = = 1\nprint('after')\n")
    assert.truthy(err:find("unexpected symbol", 1, true), err)
    assert.truthy(out:find("after", 1, true), out)
  end)
end)

describe("dlua bad options", function()
  it("rejects an unknown option with the usage text", function()
    local out, err, code = run({"-x"})
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find("unrecognized option '-x'", 1, true), err)
    assert.truthy(err:find("usage:", 1, true))
  end)

  it("rejects extra characters after a flag", function()
    local _, err, code = run({"-vx"})
    assert.equal(1, code)
    assert.truthy(err:find("unrecognized option '-vx'", 1, true), err)
  end)
end)
