-- dl.utils: training tools.
--   progress(iter_or_n, {total, desc, ...}): a tqdm-like bar on stderr.
--   EarlyStopping({patience, min_delta, path, mode}): stop when a validation
--   metric stops improving, keeping the best state_dict on disk.
local dl = require "dlua"

local utils = {}
dl.utils = utils

-- monotonic wall clock (os.clock is CPU time, summed over OpenMP threads)
local now = dl._time or os.clock

local function fmt_time(s)
  if s ~= s or s == math.huge or s < 0 then return "?" end
  s = math.floor(s + 0.5)
  local h, m = s // 3600, (s % 3600) // 60
  s = s % 60
  if h > 0 then return string.format("%d:%02d:%02d", h, m, s) end
  return string.format("%02d:%02d", m, s)
end

local function fmt_num(v)
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "number" then return string.format("%.4g", v) end
  if dl.is_tensor(v) and v:numel() == 1 then return fmt_num(v:item()) end
  return tostring(v)
end

-- "12.3it/s" or "4.56s/it" (tqdm's form, whichever reads as >= 1)
local function fmt_rate(n, elapsed)
  if n <= 0 or elapsed <= 0 then return "?it/s" end
  local r = n / elapsed
  if r >= 1 then return string.format("%.2fit/s", r) end
  return string.format("%.2fs/it", 1 / r)
end

----------------------------------------------------------------------------
-- progress

local Progress = {}
Progress.__index = Progress
Progress.__name = "dl.utils.progress"

local progress_opts = {
  total = true, desc = true, file = true, tty = true, width = true,
  mininterval = true, interval = true, leave = true, disable = true, clock = true, all_ranks = true,
}

local function check_opts(fn, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(string.format("%s: bad argument #2 (options table expected, got %s)", fn, type(opts)), 3)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      error(require("dlua.checks").unknown_option(fn, k, allowed), 3)
    end
  end
  return opts
end

-- progress(n | iterator function | list, opts) -> bar. The bar is callable,
-- so `for i in progress(n) do` and `for x, y in progress(loader:iter(),
-- {total = #loader}) do` work; it closes itself when the iteration ends
-- or the loop is left by break.
-- Options: total, desc, file (stderr), tty (auto: isatty(2)), width (auto),
-- mininterval (TTY redraw period, 0.1 s), interval (plain-line period when
-- not a TTY, 10 s), leave (keep the finished bar, true), disable, clock,
-- all_ranks (in a dl.dist job every rank draws a bar; default rank 0 only).
function utils.progress(src, opts)
  local fn = "dl.utils.progress"
  opts = check_opts(fn, opts, progress_opts)
  local self = setmetatable({n = 0, postfix = nil, closed = false}, Progress)
  local st = type(src)
  if st == "number" then
    if src ~= src or src < 0 or src ~= math.floor(src) or src == math.huge then
      error(fn .. ": bad argument #1 (count must be a non-negative integer, got " .. tostring(src) .. ")", 2)
    end
    local count, i = math.tointeger(src), 0
    self.total = count
    self._next = function()
      if i >= count then return nil end
      i = i + 1
      return i
    end
  elseif st == "function" then
    self._next = src
  elseif st == "table" and getmetatable(src) == nil then
    local i, list = 0, src
    self.total = #list
    self._next = function()
      i = i + 1
      if list[i] == nil then return nil end
      return i, list[i]
    end
  elseif src == nil then
    self._next = nil -- manual mode: bar:update(n)
  else
    error(fn .. ": bad argument #1 (count, iterator function or list expected, got " .. st .. ")", 2)
  end
  if opts.total ~= nil then
    local t = opts.total
    if type(t) ~= "number" or t ~= t or t < 0 or t ~= math.floor(t) or t == math.huge then
      error(fn .. ": option 'total' must be a non-negative integer, got " .. tostring(t), 2)
    end
    self.total = math.tointeger(t)
  end
  if opts.desc ~= nil and type(opts.desc) ~= "string" then
    error(fn .. ": option 'desc' must be a string, got " .. type(opts.desc), 2)
  end
  if opts.clock ~= nil and type(opts.clock) ~= "function" then
    error(fn .. ": option 'clock' must be a function, got " .. type(opts.clock), 2)
  end
  for _, k in ipairs({"mininterval", "interval", "width"}) do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v ~= v or v < 0) then
      error(string.format("%s: option '%s' must be a non-negative number, got %s", fn, k, tostring(v)), 2)
    end
  end
  self.desc = opts.desc
  self.file = opts.file or io.stderr
  if type(self.file) ~= "userdata" and type(self.file) ~= "table" then
    error(fn .. ": option 'file' must be a file or an object with write(), got " .. type(self.file), 2)
  end
  -- in a dl.dist job one bar, rank 0's, unless every rank asks for its own
  self.disable = opts.disable == true or (not opts.all_ranks and not dl.dist.is_main())
  self.leave = opts.leave ~= false
  if opts.tty ~= nil then
    self.tty = opts.tty and true or false
  else
    self.tty = self.file == io.stderr and dl._isatty ~= nil and dl._isatty(2)
  end
  self.width = opts.width or (self.tty and dl._term_width and dl._term_width(2)) or 80
  self.mininterval = opts.mininterval or 0.1
  self.interval = opts.interval or 10
  self.clock = opts.clock or now
  self.start = self.clock()
  self.last_print = self.start
  self.last_len = 0
  if self.tty then self:refresh() end
  -- the 4th value is the generic for's to-be-closed variable: a `break`
  -- out of the loop still closes the bar
  return self, nil, nil, self
end

-- the status line: "desc: 42%|####      | 42/100 [00:01<00:02, 30.5it/s, loss=0.3]"
function Progress:format()
  local elapsed = self.clock() - self.start
  local n, total = self.n, self.total
  local parts = {}
  local prefix = self.desc and (self.desc .. ": ") or ""
  local tail
  local rate = fmt_rate(n, elapsed)
  local post = self.postfix and (", " .. self.postfix) or ""
  if total and total > 0 then
    local frac = math.min(n / total, 1)
    local eta = n > 0 and (total - n) * elapsed / n or math.huge
    local pct = string.format("%3d%%", math.floor(frac * 100))
    tail = string.format("| %d/%d [%s<%s, %s%s]", n, total, fmt_time(elapsed), fmt_time(math.max(eta, 0)), rate, post)
    if self.tty then
      -- the bar takes the width the text leaves (at least 10 cells)
      local room = self.width - #prefix - #pct - #tail - 2
      if room >= 10 then
        local fill = math.floor(frac * room + 1e-9)
        parts[#parts + 1] = prefix .. pct .. "|" .. string.rep("#", fill) .. string.rep(" ", room - fill) .. tail
        return parts[1]
      end
    end
    return prefix .. pct .. tail
  end
  return string.format("%s%d [%s, %s%s]", prefix, n, fmt_time(elapsed), rate, post)
end

local function write(self, s)
  local f = self.file
  f:write(s)
  if f.flush then f:flush() end
end

-- redraws the line (TTY) or prints it as a plain line
function Progress:refresh()
  if self.disable then return end
  local line = self:format()
  if self.tty then
    local pad = self.last_len > #line and string.rep(" ", self.last_len - #line) or ""
    write(self, "\r" .. line .. pad)
    self.last_len = #line
  else
    write(self, line .. "\n")
  end
  self.last_print = self.clock()
end

-- advances the count by n (default 1)
function Progress:update(n)
  if n == nil then n = 1 end
  if type(n) ~= "number" or n ~= n then
    error("dl.utils.progress: update: bad argument #1 (number expected, got " .. tostring(n) .. ")", 2)
  end
  if self.closed then return end
  self.n = self.n + n
  local t = self.clock()
  local period = self.tty and self.mininterval or self.interval
  if t - self.last_print >= period then self:refresh() end
end

-- postfix shown after the rate: set_postfix{loss = 0.31, acc = 0.9}
-- (keys sorted, numbers as %.4g, 1-element tensors read out)
function Progress:set_postfix(tbl)
  if type(tbl) ~= "table" then
    error("dl.utils.progress: set_postfix: bad argument #1 (table expected, got " .. type(tbl) .. ")", 2)
  end
  local keys = {}
  for k in pairs(tbl) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local items = {}
  for i, k in ipairs(keys) do
    local v = tbl[k]
    if v == nil then v = tbl[tonumber(k)] end
    items[i] = k .. "=" .. fmt_num(v)
  end
  self.postfix = #items > 0 and table.concat(items, ", ") or nil
  if self.tty and not self.closed then
    if self.clock() - self.last_print >= self.mininterval then self:refresh() end
  end
end

function Progress:set_postfix_str(s)
  if type(s) ~= "string" then
    error("dl.utils.progress: set_postfix_str: bad argument #1 (string expected, got " .. type(s) .. ")", 2)
  end
  self.postfix = s ~= "" and s or nil
end

function Progress:set_description(desc)
  if desc ~= nil and type(desc) ~= "string" then
    error("dl.utils.progress: set_description: bad argument #1 (string expected, got " .. type(desc) .. ")", 2)
  end
  self.desc = desc
end

-- prints the final state (and a newline on a TTY); idempotent
function Progress:close()
  if self.closed then return end
  self.closed = true
  if self.disable then return end
  if self.tty then
    if self.leave then
      self:refresh()
      write(self, "\n")
    else
      write(self, "\r" .. string.rep(" ", self.last_len) .. "\r")
    end
  else
    self:refresh()
  end
end

-- the generic-for protocol: each call yields the source's next values and
-- counts one step; the end of the source closes the bar
function Progress:__call()
  if not self._next then
    error("dl.utils.progress: this bar has no iterable (made with nil); use bar:update(n)", 2)
  end
  if self._started then self:update(1) end
  self._started = true
  local r = table.pack(self._next())
  if r[1] == nil then
    self:close()
    return nil
  end
  return table.unpack(r, 1, r.n)
end

function Progress:__tostring() return self:format() end
function Progress:__len() return self.total or 0 end
Progress.__close = Progress.close

----------------------------------------------------------------------------
-- EarlyStopping

local EarlyStopping = {}
EarlyStopping.__index = EarlyStopping
EarlyStopping.__name = "dl.utils.EarlyStopping"

local es_opts = {patience = true, min_delta = true, path = true, mode = true, verbose = true}

-- in a dl.dist job every rank must take the same decision: the metric is
-- averaged over the ranks first (a collective: every rank calls step)
local function same_on_every_rank(v)
  if dl.dist.size() < 2 then return v end
  local t = dl.tensor({v}, {dtype = "float64"})
  dl.dist.all_reduce(t, "avg")
  return t:item()
end

-- EarlyStopping({patience = 5, min_delta = 0, path = "best.ckpt", mode = "min",
-- verbose = false}). Without path the best state is kept in memory (cloned).
function utils.EarlyStopping(opts)
  local fn = "dl.utils.EarlyStopping"
  -- PyTorch users' positional patience: EarlyStopping(3)
  if type(opts) == "number" then opts = {patience = opts} end
  if opts ~= nil and type(opts) ~= "table" then
    error(fn .. ": bad argument #1 (options table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not es_opts[k] then error(require("dlua.checks").unknown_option(fn, k, es_opts), 2) end
  end
  local patience = opts.patience == nil and 5 or opts.patience
  if type(patience) ~= "number" or patience ~= math.floor(patience) or patience < 0 or patience == math.huge then
    error(fn .. ": option 'patience' must be a non-negative integer, got " .. tostring(patience), 2)
  end
  local min_delta = opts.min_delta == nil and 0 or opts.min_delta
  if type(min_delta) ~= "number" or min_delta ~= min_delta or min_delta < 0 then
    error(fn .. ": option 'min_delta' must be a non-negative number, got " .. tostring(min_delta), 2)
  end
  local mode = opts.mode or "min"
  if mode ~= "min" and mode ~= "max" then
    error(fn .. ": option 'mode' must be \"min\" or \"max\", got " .. tostring(mode), 2)
  end
  if opts.path ~= nil and (type(opts.path) ~= "string" or opts.path == "") then
    error(fn .. ": option 'path' must be a non-empty string, got " .. tostring(opts.path), 2)
  end
  return setmetatable({
    patience = math.tointeger(patience), min_delta = min_delta, mode = mode, path = opts.path,
    verbose = opts.verbose == true,
    best = nil, best_step = nil, counter = 0, steps = 0, should_stop = false,
  }, EarlyStopping)
end

local function metric_value(v)
  if type(v) == "number" then return v end
  if dl.is_tensor(v) and v:numel() == 1 then return v:item() end
  return nil
end

-- step(metric, model) -> true when training should stop. An improvement (by
-- more than min_delta) saves model's state_dict and resets the counter; NaN
-- never improves.
function EarlyStopping:step(metric, model)
  local fn = "dl.utils.EarlyStopping:step"
  local v = metric_value(metric)
  if v == nil then
    error(fn .. ": bad argument #1 (number or 1-element tensor expected, got " ..
      (dl.is_tensor(metric) and "tensor with " .. metric:numel() .. " elements" or type(metric)) .. ")", 2)
  end
  if model ~= nil and not (dl.nn and dl.nn.is_module(model)) then
    error(fn .. ": bad argument #2 (module expected, got " .. type(model) .. ")", 2)
  end
  v = same_on_every_rank(v)
  self.steps = self.steps + 1
  local improved
  if v ~= v then
    improved = false
  elseif self.best == nil then
    improved = true
  elseif self.mode == "min" then
    improved = v < self.best - self.min_delta
  else
    improved = v > self.best + self.min_delta
  end
  if improved then
    self.best, self.best_step, self.counter = v, self.steps, 0
    if model ~= nil then
      local sd = model:state_dict()
      if self.path and dl.dist.is_main() then
        dl.save(self.path, sd)
      else -- ranks other than 0 of a dl.dist job keep theirs in memory
        local copy = {}
        for k, t in pairs(sd) do copy[k] = t:clone() end
        self._best_state = copy
      end
      self._saved = true
    end
    if self.verbose and dl.dist.is_main() then
      io.stderr:write(string.format("EarlyStopping: new best %.6g at step %d\n", v, self.steps))
    end
  else
    self.counter = self.counter + 1
    if self.counter >= self.patience then self.should_stop = true end
  end
  return self.should_stop
end

-- loads the best saved state into model (from path, or from memory)
function EarlyStopping:load_best(model)
  local fn = "dl.utils.EarlyStopping:load_best"
  if not (dl.nn and dl.nn.is_module(model)) then
    error(fn .. ": bad argument #1 (module expected, got " .. type(model) .. ")", 2)
  end
  if not self._saved then
    error(fn .. ": no state saved yet (call step(metric, model) first)", 2)
  end
  local sd = self._best_state or dl.load(self.path)
  model:load_state_dict(sd)
  return model
end

function EarlyStopping:__tostring()
  return string.format("EarlyStopping(mode=%s, patience=%d, min_delta=%g, best=%s, counter=%d)",
    self.mode, self.patience, self.min_delta, self.best and string.format("%.6g", self.best) or "nil", self.counter)
end

utils.Progress = Progress

return dl
