-- dl.utils: progress bars and early stopping.
local dl = require "dlua"
local H = require "spec.helper"

-- a file-like sink and a clock the test moves by hand
local function sink()
  local s = {buf = {}}
  function s:write(...)
    for _, v in ipairs({...}) do self.buf[#self.buf + 1] = v end
  end
  function s:text() return table.concat(self.buf) end
  return s
end

local function fake_clock(t0)
  local c = {t = t0 or 100}
  c.fn = function() return c.t end
  return c
end

local function lines_of(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("dl.utils.progress", function()
  it("iterates 1..n and closes itself at the end", function()
    local f = sink()
    local got = {}
    for i in dl.utils.progress(4, {file = f, tty = false}) do got[#got + 1] = i end
    assert.same({1, 2, 3, 4}, got)
    local text = f:text()
    assert.truthy(text:find("100%| 4/4", 1, true), text)
    assert.is_nil(text:find("\r", 1, true))
  end)

  it("passes every value of an iterator function through, counting steps", function()
    local f = sink()
    local k = 0
    local function it3()
      k = k + 1
      if k > 3 then return nil end
      return k, k * 10, "s" .. k
    end
    local bar = dl.utils.progress(it3, {total = 3, file = f, tty = false})
    local seen = {}
    for a, b, c in bar do seen[#seen + 1] = {a, b, c} end
    assert.same({{1, 10, "s1"}, {2, 20, "s2"}, {3, 30, "s3"}}, seen)
    assert.equal(3, bar.n)
    assert.is_true(bar.closed)
  end)

  it("iterates a DataLoader-style iterator with total = #loader", function()
    local X = dl.arange(10):float():view(5, 2)
    local y = dl.arange(5):long()
    local loader = dl.data.DataLoader(dl.data.TensorDataset(X, y), {batch_size = 2})
    local f = sink()
    local rows = 0
    local bar = dl.utils.progress(loader:iter(), {total = #loader, file = f, tty = false})
    for xb, yb in bar do
      assert.equal(xb:size(1), yb:size(1))
      rows = rows + xb:size(1)
    end
    assert.equal(5, rows)
    assert.equal(3, bar.n)
    assert.truthy(f:text():find("3/3", 1, true))
  end)

  it("closes the bar when the loop is left by break", function()
    local f = sink()
    for i in dl.utils.progress(10, {file = f, tty = false}) do
      if i == 3 then break end
    end
    assert.truthy(f:text():find("2/10", 1, true), f:text())
    assert.equal(1, #lines_of(f:text()))
  end)

  it("iterates a list as index, value pairs", function()
    local got = {}
    for i, v in dl.utils.progress({"a", "b"}, {file = sink(), tty = false}) do got[i] = v end
    assert.same({"a", "b"}, got)
  end)

  it("counts zero items and still prints a final line", function()
    local f = sink()
    for _ in dl.utils.progress(0, {file = f, tty = false}) do error("no items expected") end
    assert.truthy(f:text():find("0/0", 1, true) or f:text():find("0 [", 1, true), f:text())
  end)

  it("shows count, percentage, elapsed, ETA and rate", function()
    local c = fake_clock()
    local f = sink()
    local bar = dl.utils.progress(10, {file = f, tty = false, clock = c.fn, desc = "train"})
    c.t = c.t + 2
    bar:update(4)
    local s = bar:format()
    -- 4 steps in 2 s: 2 it/s, 6 left -> 3 s
    assert.truthy(s:find("^train:  40%%"), s)
    assert.truthy(s:find("4/10 [00:02<00:03, 2.00it/s]", 1, true), s)
  end)

  it("shows seconds per step when slower than one step a second", function()
    local c = fake_clock()
    local bar = dl.utils.progress(10, {file = sink(), tty = false, clock = c.fn})
    c.t = c.t + 8
    bar:update(2)
    assert.truthy(bar:format():find("4.00s/it", 1, true), bar:format())
  end)

  it("formats hours in the elapsed time", function()
    local c = fake_clock()
    local bar = dl.utils.progress(nil, {file = sink(), tty = false, clock = c.fn})
    c.t = c.t + 3723
    bar:update(1)
    assert.truthy(bar:format():find("1 [1:02:03", 1, true), bar:format())
  end)

  it("prints plain lines only every `interval` seconds when not a TTY", function()
    local c = fake_clock()
    local f = sink()
    local bar = dl.utils.progress(100, {file = f, tty = false, clock = c.fn, interval = 5})
    for _ = 1, 10 do
      c.t = c.t + 1
      bar:update(1)
    end
    bar:close()
    local ls = lines_of(f:text())
    -- at t = 5 and t = 10, then the closing line
    assert.equal(3, #ls)
    assert.truthy(ls[1]:find("5/100", 1, true), ls[1])
    assert.truthy(ls[2]:find("10/100", 1, true), ls[2])
    assert.truthy(ls[3]:find("10/100", 1, true), ls[3])
    assert.is_nil(f:text():find("\r", 1, true))
  end)

  it("redraws one line with \\r and a bar on a TTY, ending with a newline", function()
    local c = fake_clock()
    local f = sink()
    local bar = dl.utils.progress(4, {file = f, tty = true, clock = c.fn, width = 60})
    for _ in bar do c.t = c.t + 1 end
    local text = f:text()
    assert.truthy(text:find("\r", 1, true))
    assert.equal("\n", text:sub(-1))
    local last = text:match("\r([^\r]*)\n$")
    assert.truthy(last:find("100%|#", 1, true), last)
    assert.truthy(#last <= 60, last)
    assert.truthy(last:find("| 4/4 [", 1, true), last)
  end)

  it("redraws a TTY bar at most every mininterval seconds", function()
    local c = fake_clock()
    local f = sink()
    local bar = dl.utils.progress(1000, {file = f, tty = true, clock = c.fn, mininterval = 1})
    local before = #f.buf
    for _ = 1, 10 do
      c.t = c.t + 0.25
      bar:update(1)
    end
    -- 2.5 s of updates: redraws at 1 s and 2 s
    local draws = 0
    for i = before + 1, #f.buf do
      if f.buf[i]:sub(1, 1) == "\r" then draws = draws + 1 end
    end
    assert.equal(2, draws)
  end)

  it("leave = false erases the TTY bar on close", function()
    local f = sink()
    local bar = dl.utils.progress(2, {file = f, tty = true, leave = false})
    bar:update(2)
    bar:close()
    assert.truthy(f:text():find("\r%s+\r$"), f:text())
  end)

  it("set_postfix shows sorted key=value pairs, reading 1-element tensors", function()
    local bar = dl.utils.progress(3, {file = sink(), tty = false})
    bar:set_postfix({loss = 0.123456, acc = dl.tensor({0.5}), epoch = 2})
    local s = bar:format()
    assert.truthy(s:find(", acc=0.5, epoch=2, loss=0.1235]", 1, true), s)
    bar:set_postfix_str("lr=1e-3")
    assert.truthy(bar:format():find(", lr=1e-3]", 1, true))
  end)

  it("update(n) in manual mode counts without an iterable", function()
    local f = sink()
    local bar = dl.utils.progress(nil, {total = 50, file = f, tty = false})
    bar:update(20)
    bar:update()
    assert.equal(21, bar.n)
    assert.truthy(bar:format():find("21/50", 1, true))
    assert.equal(50, #bar)
    bar:close()
    bar:close() -- idempotent
    assert.equal(1, #lines_of(f:text()))
  end)

  it("set_description changes the prefix", function()
    local bar = dl.utils.progress(2, {file = sink(), tty = false, desc = "a"})
    bar:set_description("epoch 3")
    assert.truthy(bar:format():find("^epoch 3: "))
  end)

  it("disable = true writes nothing", function()
    local f = sink()
    for _ in dl.utils.progress(3, {file = f, disable = true, tty = true}) do end
    assert.equal("", f:text())
  end)

  it("writes to stderr by default (not to stdout)", function()
    local DLUA = os.getenv("DLUA_BIN") or "bin/dlua"
    local out, err = os.tmpname(), os.tmpname()
    os.execute(string.format("%s -e 'for i in dl.utils.progress(3) do end' >%s 2>%s", DLUA, out, err))
    local fo, fe = io.open(out), io.open(err)
    local o, e = fo:read("a"), fe:read("a")
    fo:close(); fe:close(); os.remove(out); os.remove(err)
    assert.equal("", o)
    assert.truthy(e:find("100%| 3/3", 1, true), e)
  end)

  it("rejects bad arguments with named errors", function()
    H.assert_error(function() dl.utils.progress("x") end, "dl.utils.progress", "bad argument #1", "string")
    H.assert_error(function() dl.utils.progress(-1) end, "dl.utils.progress", "non-negative integer")
    H.assert_error(function() dl.utils.progress(2.5) end, "non-negative integer")
    H.assert_error(function() dl.utils.progress(3, {total = "a"}) end, "option 'total'")
    H.assert_error(function() dl.utils.progress(3, {desc = 5}) end, "option 'desc'")
    H.assert_error(function() dl.utils.progress(3, {colour = 5}) end, "unknown option 'colour'")
    H.assert_error(function() dl.utils.progress(3, 7) end, "bad argument #2", "options table")
    H.assert_error(function() dl.utils.progress(3, {interval = -1}) end, "option 'interval'")
    local bar = dl.utils.progress(3, {file = sink(), tty = false})
    H.assert_error(function() bar:set_postfix(5) end, "set_postfix", "table expected")
    H.assert_error(function() bar:update("a") end, "update", "number expected")
    H.assert_error(function() bar:set_description(1) end, "set_description")
    local manual = dl.utils.progress(nil, {file = sink(), tty = false})
    H.assert_error(function() for _ in manual do end end, "no iterable")
  end)
end)

describe("dl.utils.EarlyStopping", function()
  local function tiny_model()
    dl.manual_seed(3)
    return dl.nn.Linear(3, 2)
  end

  it("stops after `patience` steps without improvement (mode min)", function()
    local es = dl.utils.EarlyStopping({patience = 2})
    assert.is_false(es:step(1.0))
    assert.is_false(es:step(0.5))
    assert.is_false(es:step(0.6))
    assert.equal(1, es.counter)
    assert.is_false(es:step(0.4)) -- improvement resets the counter
    assert.equal(0, es.counter)
    assert.is_false(es:step(0.45))
    assert.is_true(es:step(0.41))
    assert.equal(0.4, es.best)
    assert.equal(4, es.best_step)
    assert.is_true(es.should_stop)
  end)

  it("needs an improvement larger than min_delta", function()
    local es = dl.utils.EarlyStopping({patience = 1, min_delta = 0.1})
    es:step(1.0)
    assert.is_true(es:step(0.95))
    assert.equal(1.0, es.best)
    local es2 = dl.utils.EarlyStopping({patience = 1, min_delta = 0.1})
    es2:step(1.0)
    assert.is_false(es2:step(0.85))
    assert.equal(0.85, es2.best)
  end)

  it("mode max follows a rising metric", function()
    local es = dl.utils.EarlyStopping({patience = 1, mode = "max"})
    assert.is_false(es:step(0.8))
    assert.is_false(es:step(0.9))
    assert.is_true(es:step(0.85))
    assert.equal(0.9, es.best)
  end)

  it("patience 0 stops at the first step without improvement", function()
    local es = dl.utils.EarlyStopping({patience = 0})
    assert.is_false(es:step(3))
    assert.is_true(es:step(3))
  end)

  it("never counts NaN as an improvement", function()
    local es = dl.utils.EarlyStopping({patience = 2})
    es:step(1.0)
    assert.is_false(es:step(0 / 0))
    assert.is_true(es:step(0 / 0))
    assert.equal(1.0, es.best)
  end)

  it("takes a 1-element tensor as the metric", function()
    local es = dl.utils.EarlyStopping()
    es:step(dl.tensor({2.5}))
    assert.equal(2.5, es.best)
    assert.equal(5, es.patience)
  end)

  it("keeps the best weights in memory without a path and restores them", function()
    local m = tiny_model()
    local es = dl.utils.EarlyStopping({patience = 3})
    es:step(0.5, m)
    local best = m.weight:clone()
    dl.no_grad(function() m.weight:add_(1) end)
    es:step(0.7, m) -- worse: not saved
    es:load_best(m)
    H.assert_close(m.weight, best, 0)
  end)

  it("saves the best state_dict to path with dl.save and reloads it", function()
    local base = os.tmpname() -- made empty by os.tmpname
    local path = base .. ".safetensors"
    local m = tiny_model()
    local es = dl.utils.EarlyStopping({patience = 3, path = path})
    es:step(0.5, m)
    local best_w, best_b = m.weight:clone(), m.bias:clone()
    local sd = dl.load(path)
    H.assert_close(sd.weight, best_w, 0)
    H.assert_close(sd.bias, best_b, 0)
    dl.no_grad(function() m.weight:mul_(3); m.bias:zero_() end)
    es:step(0.9, m)
    es:load_best(m)
    H.assert_close(m.weight, best_w, 0)
    H.assert_close(m.bias, best_b, 0)
    os.remove(path)
    os.remove(base)
  end)

  it("rejects bad options and arguments with named errors", function()
    H.assert_error(function() dl.utils.EarlyStopping({patience = -1}) end, "EarlyStopping", "patience")
    H.assert_error(function() dl.utils.EarlyStopping({patience = 1.5}) end, "patience")
    H.assert_error(function() dl.utils.EarlyStopping({min_delta = -0.1}) end, "min_delta")
    H.assert_error(function() dl.utils.EarlyStopping({mode = "up"}) end, "mode", "\"min\" or \"max\"")
    H.assert_error(function() dl.utils.EarlyStopping({path = 3}) end, "path")
    H.assert_error(function() dl.utils.EarlyStopping({patient = 3}) end, "unknown option 'patient'")
    H.assert_error(function() dl.utils.EarlyStopping("5") end, "bad argument #1")
    assert.equal(5, dl.utils.EarlyStopping(5).patience) -- PyTorch users' positional patience
    local es = dl.utils.EarlyStopping()
    H.assert_error(function() es:step("low") end, "step", "bad argument #1", "string")
    H.assert_error(function() es:step(dl.zeros(2)) end, "step", "2 elements")
    H.assert_error(function() es:step(1, {}) end, "step", "bad argument #2", "module expected")
    H.assert_error(function() es:load_best(tiny_model()) end, "load_best", "no state saved")
    H.assert_error(function() es:load_best(nil) end, "load_best", "module expected")
  end)
end)
