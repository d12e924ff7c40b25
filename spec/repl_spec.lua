-- The REPL on a terminal: driven through a pseudo-terminal by tmux (its own
-- server socket, one uniquely named session per test, always killed).
local DLUA = os.getenv("DLUA_BIN") or "bin/dlua"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function shell(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local cwd = shell("pwd"):gsub("\n$", "")
if DLUA:sub(1, 1) ~= "/" then DLUA = cwd .. "/" .. DLUA end
local have_tmux = select(2, shell("command -v tmux"))

local function sleep(s) os.execute("sleep " .. s) end

-- a REPL in a detached tmux session
local Term = {}
Term.__index = Term

local counter = 0
local function start(setup_home)
  counter = counter + 1
  local id = string.format("dlua_h5_%d_%d_%d", os.time(), math.random(1e9), counter)
  local home = os.tmpname()
  os.remove(home)
  assert(os.execute("mkdir -p " .. q(home)))
  if setup_home then setup_home(home) end
  local self = setmetatable({socket = id, name = id, home = home}, Term)
  local cmd = string.format("env -u LUA_INIT -u LUA_INIT_5_4 HOME=%s %s", q(home), q(DLUA))
  local out, ok = shell(string.format("tmux -L %s new-session -d -s %s -x 100 -y 40 -c %s %s",
    q(id), q(id), q(cwd), q(cmd)))
  assert(ok, "tmux could not start: " .. out)
  return self
end

function Term:tmux(args) return shell(string.format("tmux -L %s %s", q(self.socket), args)) end

function Term:screen() return (self:tmux("capture-pane -p -t " .. q(self.name))) end

function Term:alive() return select(2, self:tmux("has-session -t " .. q(self.name))) end

-- polls the screen until pred(screen) holds; fails with the screen after timeout
function Term:wait(pred, what, timeout)
  local deadline = os.time() + (timeout or 15)
  local s
  repeat
    s = self:screen()
    if pred(s) then return s end
    sleep(0.05)
  until os.time() > deadline
  error(string.format("timed out waiting for %s; screen:\n%s", what, s), 2)
end

function Term:wait_text(text, timeout)
  return self:wait(function(s) return s:find(text, 1, true) ~= nil end, string.format("%q", text), timeout)
end

local function last_line(s)
  local last = ""
  for line in s:gmatch("[^\n]*") do
    if line:find("%S") then last = line end
  end
  return last
end

-- waits until the last line is the prompt (">" or ">>", trailing space trimmed)
function Term:wait_prompt(p)
  return self:wait(function(s) return last_line(s):gsub("%s+$", "") == (p or ">") end, "prompt " .. (p or ">"))
end

function Term:keys(...)
  local args = {}
  for i, k in ipairs({...}) do args[i] = q(k) end
  self:tmux(string.format("send-keys -t %s %s", q(self.name), table.concat(args, " ")))
end

-- literal text, then Enter; waits for the next prompt first so no keystroke
-- arrives while the terminal is between modes
function Term:line(text, prompt)
  self:wait_prompt(prompt)
  self:tmux(string.format("send-keys -t %s -l %s", q(self.name), q(text)))
  self:keys("Enter")
end

function Term:type(text)
  self:tmux(string.format("send-keys -t %s -l %s", q(self.name), q(text)))
end

function Term:close()
  self:tmux("kill-session -t " .. q(self.name))
  os.execute("rm -rf " .. q(self.home))
end

describe("the REPL on a terminal", function()
  local term

  before_each(function()
    if not have_tmux then pending("tmux is not installed") end
  end)

  after_each(function()
    if term then term:close() end
    term = nil
  end)

  it("prints the banner and pretty-prints a tensor expression", function()
    term = start()
    term:wait_text("dlua ")
    term:line("x = dl.tensor({{1.5, 2}, {3, 4}})")
    term:line("x")
    local s = term:wait_text("        [3.0000, 4.0000]])")
    assert.truthy(s:find("> x\ntensor([[1.5000, 2.0000],\n        [3.0000, 4.0000]])", 1, true), s)
  end)

  it("prints =expr, several values and plain tables", function()
    term = start()
    term:line("=1 + 1, 'two'")
    term:wait(function(s) return s:find("\n2%s+two\n") ~= nil end, "2 and two") -- the tab shows as spaces
    term:line("dl.zeros(2, 3):size()")
    term:wait_text("{2, 3}")
  end)

  it("reads a multi-line for loop until it is complete", function()
    term = start()
    term:line("for i = 1, 3 do")
    term:line("io.write(i * 10, ' ')", ">>")
    term:line("end", ">>")
    local s = term:wait_text("10 20 30")
    assert.truthy(s:find("> for i = 1, 3 do\n>> io.write(i * 10, ' ')\n>> end\n10 20 30", 1, true), s)
  end)

  it("survives Ctrl-C at an idle prompt, dropping the line, and ends on Ctrl-D", function()
    term = start()
    term:wait_prompt()
    term:type("x = 1 + ")
    term:keys("C-c")
    term:wait(function(s) return s:find("> x = 1 %+ %^C\n>") ~= nil end, "the dropped line and a new prompt")
    term:line("=40 + 2")
    term:wait_text("\n42\n")
    assert.is_true(term:alive())
    term:keys("C-d")
    term:wait(function() return not term:alive() end, "the REPL to end")
  end)

  it("reports an error and returns to the prompt", function()
    term = start()
    term:line("error('oops')")
    term:wait_text("stdin:1: oops")
    term:line("=40 + 2")
    term:wait_text("\n42\n")
  end)

  it("completes dl.zer<Tab> to dl.zeros", function()
    term = start()
    term:wait_prompt()
    term:type("dl.zer")
    term:keys("Tab")
    term:wait(function(s) return last_line(s) == "> dl.zeros" end, "the completed line")
    term:type("(2)")
    term:keys("Enter")
    term:wait_text("tensor([0., 0.])")
  end)

  it("lists the candidates on a second Tab", function()
    term = start()
    term:wait_prompt()
    term:type("dl.zeros")
    term:keys("Tab")
    sleep(0.2)
    term:keys("Tab")
    local s = term:wait_text("zeros_like")
    assert.truthy(s:find("zeros_like", 1, true), s)
  end)

  it("completes tensor methods after ':' and globals", function()
    term = start()
    term:line("x = dl.ones(2, 3)")
    term:wait_prompt()
    term:type("x:transp")
    term:keys("Tab")
    term:wait(function(s) return last_line(s) == "> x:transpose" end, "x:transpose")
    term:type("(1, 2):si")
    term:keys("Tab")
    term:wait(function(s) return last_line(s) == "> x:transpose(1, 2):si" end, "no completion after a call")
    term:keys("C-u")
    term:type("pri")
    term:keys("Tab")
    term:wait(function(s) return last_line(s) == "> print" end, "print")
    term:type("(x:t")
    term:keys("Tab")
    term:type("():size(2))")
    term:keys("Enter")
    term:wait_text("\n2\n")
  end)

  it("completes fields of nested tables and string methods", function()
    term = start()
    term:line("s = 'abc'")
    term:wait_prompt()
    term:type("string.up")
    term:keys("Tab")
    term:wait(function(s) return last_line(s) == "> string.upper" end, "string.upper")
    term:keys("C-u")
    term:type("s:up")
    term:keys("Tab")
    term:wait(function(s) return last_line(s) == "> s:upper" end, "s:upper")
    term:type("()")
    term:keys("Enter")
    term:wait_text("\nABC\n")
  end)

  it("interrupts a running statement on Ctrl-C and keeps the session", function()
    term = start()
    term:line("n = 0 while true do n = n + 1 end")
    term:wait(function(s) return s:find("while true do n = n + 1 end\n", 1, true) ~= nil end, "the loop to start")
    sleep(0.3)
    term:keys("C-c")
    term:wait_text("interrupted!")
    term:line("=n > 0")
    term:wait_text("\ntrue\n")
  end)

  it("writes the history file on exit", function()
    term = start()
    term:line("print(12345)")
    term:wait_text("\n12345\n")
    term:wait_prompt()
    term:keys("C-d")
    local deadline = os.time() + 15
    while term:alive() and os.time() <= deadline do sleep(0.05) end
    assert.falsy(term:alive(), "the REPL did not exit on Ctrl-D")
    local f = assert(io.open(term.home .. "/.dlua_history"))
    local text = f:read("a")
    f:close()
    assert.truthy(text:find("print(12345)", 1, true), text)
  end)

  it("reads the history back: Up recalls a line of an earlier session", function()
    term = start(function(home)
      local f = assert(io.open(home .. "/.dlua_history", "w"))
      f:write("_HiStOrY_V2_\nprint(777)\n")
      f:close()
    end)
    term:wait_prompt()
    term:keys("Up")
    term:wait(function(s) return last_line(s) == "> print(777)" end, "the recalled line")
    term:keys("Enter")
    term:wait_text("\n777\n")
  end)
end)
