-- dlua.nn.rnn: the recurrent layers RNN, LSTM, GRU and their one-step cells
-- RNNCell, LSTMCell, GRUCell, with PyTorch's semantics, parameter names,
-- layouts ([gates * hidden, in]) and gate orders (LSTM i, f, g, o; GRU r,
-- z, n), so state dicts move between the two by name.
--
-- A layer runs each (layer, direction) over the sequence as one engine op
-- for the LSTM and the GRU (see scan below), as per-step ops for the plain
-- RNNs and the projected LSTM. The cells are one fused kernel each
-- (dl.lstm_cell, dl.gru_cell: one pass, one graph node). GRU keeps b_hh in
-- the hidden projection, which r gates: n = tanh(W_in x + b_in + r * (W_hn
-- h + b_hn)). Reverse mode, forward mode and double backward are the
-- engine op's rules or the tensor ops', and CUDA tensors run unchanged.
local dl = require "dlua"
local nn = dl.nn
local checks = require "dlua.checks"
local raise = require("dlua.errors").raise

local addmm, mm, stack, cat, dropout, zeros = dl.addmm, dl.mm, dl.stack, dl.cat, dl.dropout, dl.zeros
local is_tensor = dl.is_tensor
local fmt, sqrt = string.format, math.sqrt
local shape_str, check_count, check_options = checks.shape_str, checks.count, checks.options

---------------------------------------------------------------------------
-- One time step of each kind: pre-activations in, new state out
---------------------------------------------------------------------------

local function rnn_tanh_step(pre) return pre:tanh() end
local function rnn_relu_step(pre) return pre:relu() end

-- gates [B, 4H] = x W_ih^T + b_ih + h W_hh^T + b_hh, in PyTorch's order
-- i, f, g, o; c [B, H] -> h, c: one fused kernel and one graph node
-- (dl.lstm_cell: c1 = s(f) c + s(i) tanh(g), h = s(o) tanh(c1))
local lstm_cell_step = dl.lstm_cell

-- gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh [B, 3H], in PyTorch's order
-- r, z, n; h [B, H] -> h (dl.gru_cell: r = s(gi_r + gh_r), z likewise,
-- n = tanh(gi_n + r gh_n), h1 = (1 - z) n + z h)
local gru_cell_step = dl.gru_cell

local lstm_scan, gru_scan = dl._lstm_scan, dl._gru_scan

-- gates per hidden unit, and the step of the plain RNNs
local MODES = {
  RNN_TANH = {gates = 1, step = rnn_tanh_step},
  RNN_RELU = {gates = 1, step = rnn_relu_step},
  LSTM = {gates = 4},
  GRU = {gates = 3},
}

-- x @ wt (+ b), wt already transposed
local function affine(x, wt, b)
  if b then return addmm(b, x, wt) end
  return mm(x, wt)
end

-- One layer in one direction over x [T, B, in] (T >= 1): h [B, Hout] and c
-- [B, H] (LSTM) the initial state, w the layer's weights {ih, hh, b_ih,
-- b_hh, hr} (W_hr for an LSTM with proj_size; biases may be nil). Returns
-- the outputs [T, B, Hout] and the last h and c.
--
-- The LSTM (without projection) and the GRU run as one engine op over the
-- whole sequence (dl._lstm_scan, dl._gru_scan): the input projection of
-- every step as one GEMM, per step the hidden projection by a weight
-- packed once and the fused cell, and in backward one GEMM per weight over
-- every step instead of a small one and an add a step. The RNNs and the
-- projected LSTM step here: the input projection as one GEMM (b_hh folded
-- into it), then per step one addmm and the cell math.
local function scan(mode, x, h, c, w, reverse)
  local T, B = x:size(1), x:size(2)
  local last = reverse and 1 or T
  if mode == "LSTM" and not w.hr then
    local hs, c_last = lstm_scan(x, h, c, w.ih, w.hh, w.b_ih, w.b_hh, reverse)
    return hs, hs:select(1, last), c_last
  elseif mode == "GRU" then
    local hs = gru_scan(x, h, w.ih, w.hh, w.b_ih, w.b_hh, reverse)
    return hs, hs:select(1, last)
  end
  local xb = w.b_ih and w.b_ih + w.b_hh
  local xp = affine(x:reshape(T * B, x:size(3)), w.ih:t(), xb):view(T, B, w.ih:size(1))
  local whh_t, whr_t = w.hh:t(), w.hr and w.hr:t()
  local step = MODES[mode].step
  local outs = {}
  for s = 1, T do
    local t = reverse and T + 1 - s or s
    local pre = addmm(xp:select(1, t), h, whh_t)
    if mode == "LSTM" then
      h, c = lstm_cell_step(pre, c)
      h = mm(h, whr_t)
    else
      h = step(pre)
    end
    outs[t] = h
  end
  return stack(outs, 1), h, c
end

---------------------------------------------------------------------------
-- Argument checks shared by the layers and the cells
---------------------------------------------------------------------------

local function bool_opt(fn, opts, name, default)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "boolean" then raise(fmt("%s: %s must be a boolean, got %s", fn, name, tostring(v))) end
  return v
end

-- "RNN_TANH" or "RNN_RELU" from the nonlinearity option
local function rnn_mode(fn, v)
  if v == nil or v == "tanh" then return "RNN_TANH" end
  if v == "relu" then return "RNN_RELU" end
  raise(fmt("%s: nonlinearity must be \"tanh\" or \"relu\", got %s", fn,
    type(v) == "string" and fmt("%q", v) or tostring(v)))
end

-- t has the dtype and device of the parameter p
local function check_like(label, what, t, p)
  if t.dtype ~= p.dtype then
    raise(fmt("%s: %s %s is %s, but the parameters are %s", label, what, shape_str(t), t.dtype, p.dtype))
  end
  if t.device ~= p.device then
    raise(fmt("%s: %s %s is on %s, but the parameters are on %s", label, what, shape_str(t), t.device, p.device))
  end
end

-- the input's last dim is the input size; returns its number of dims
local function check_input(label, x, dims, layout, input_size, w)
  if not is_tensor(x) then raise(fmt("%s: input must be a tensor, got %s", label, type(x))) end
  local nd = x:dim()
  if nd ~= dims and nd ~= dims - 1 then
    raise(fmt("%s: expected a %d-D (batched %s) or %d-D (unbatched) input, got %s", label, dims, layout, dims - 1,
      shape_str(x)))
  end
  if x:size(nd) ~= input_size then
    raise(fmt("%s: input %s has %d features, expected %d", label, shape_str(x), x:size(nd), input_size))
  end
  check_like(label, "input", x, w)
  return nd
end

-- a state tensor of the shape want (a list), as given for input x
local function check_state(label, name, t, want, x, layout)
  if not is_tensor(t) then raise(fmt("%s: %s must be a tensor, got %s", label, name, type(t))) end
  local want_str = "[" .. table.concat(want, ",") .. "]"
  if shape_str(t) ~= want_str then
    raise(fmt("%s: %s has shape %s, expected %s (%s for input %s)", label, name, shape_str(t), want_str, layout,
      shape_str(x)))
  end
  check_like(label, name, t, x)
  return t
end

-- the {h, c} pair of an LSTM or LSTMCell
local function state_pair(label, state)
  if type(state) ~= "table" or #state ~= 2 or not is_tensor(state[1]) or not is_tensor(state[2]) then
    raise(fmt("%s: state must be a {h, c} pair of tensors, got %s", label,
      type(state) == "table" and fmt("a table of %d entries", #state)
      or is_tensor(state) and "a single tensor " .. shape_str(state) or type(state)))
  end
  for k in pairs(state) do
    if k ~= 1 and k ~= 2 then
      raise(fmt("%s: state must be a {h, c} pair of tensors, got a table with the key %s", label, tostring(k)))
    end
  end
  return state[1], state[2]
end

-- the state a caller gave ({h, c} for an LSTM, h otherwise) checked against
-- want_h / want_c, named names[1] / names[2] in errors; unbatched, the batch
-- dim is put back at bdim
local function given_state(label, lstm, state, names, want_h, want_c, input, layout, batched, bdim)
  local h, c
  if lstm then
    h, c = state_pair(label, state)
    check_state(label, names[1], h, want_h, input, layout)
    check_state(label, names[2], c, want_c, input, layout)
  else
    if not is_tensor(state) then raise(fmt("%s: state %s must be a tensor, got %s", label, names[1], type(state))) end
    h = check_state(label, names[1], state, want_h, input, layout)
  end
  if not batched then
    h = h:unsqueeze(bdim)
    c = c and c:unsqueeze(bdim)
  end
  return h, c
end

-- Python's repr of a float (dropout=0.5, dropout=1.0)
local function pyfloat(v)
  for digits = 1, 17 do
    local s = fmt("%." .. digits .. "g", v)
    if tonumber(s) == v then
      if not s:find("[.eni]") then s = s .. ".0" end
      return s
    end
  end
end

---------------------------------------------------------------------------
-- RNN, LSTM, GRU
---------------------------------------------------------------------------

local layer_opts = {num_layers = true, bias = true, batch_first = true, dropout = true, bidirectional = true,
  dtype = true, device = true}

local function init_layer(self, fn, mode, input_size, hidden_size, opts)
  check_count(fn, 1, "input_size", input_size, 1)
  check_count(fn, 2, "hidden_size", hidden_size, 1)
  local num_layers = opts.num_layers == nil and 1 or opts.num_layers
  if math.type(num_layers) ~= "integer" or num_layers < 1 then
    raise(fmt("%s: num_layers must be an integer >= 1, got %s", fn, tostring(num_layers)))
  end
  local p = opts.dropout == nil and 0 or opts.dropout
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    raise(fmt("%s: dropout must be a number in [0, 1] (the probability of zeroing an element), got %s", fn,
      tostring(p)))
  end
  local proj = opts.proj_size == nil and 0 or opts.proj_size
  if math.type(proj) ~= "integer" or proj < 0 then
    raise(fmt("%s: proj_size must be an integer >= 0 (0: no projection), got %s", fn, tostring(proj)))
  end
  if proj >= hidden_size then
    raise(fmt("%s: proj_size (%d) must be smaller than hidden_size (%d)", fn, proj, hidden_size))
  end
  self.mode = mode
  self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
  self.bias = bool_opt(fn, opts, "bias", true)
  self.batch_first = bool_opt(fn, opts, "batch_first", false)
  self.dropout = p + 0.0
  self.bidirectional = bool_opt(fn, opts, "bidirectional", false)
  self.proj_size = proj
  -- parameters in PyTorch's order: per layer, per direction
  local to = {dtype = opts.dtype, device = opts.device}
  local G = MODES[mode].gates * hidden_size
  local D = self.bidirectional and 2 or 1
  local Hout = proj > 0 and proj or hidden_size
  local names = {}
  for l = 0, num_layers - 1 do
    for d = 0, D - 1 do
      local sfx = fmt("_l%d%s", l, d == 1 and "_reverse" or "")
      local n = {ih = "weight_ih" .. sfx, hh = "weight_hh" .. sfx}
      self[n.ih] = nn.Parameter(dl.empty(G, l == 0 and input_size or Hout * D, to))
      self[n.hh] = nn.Parameter(dl.empty(G, Hout, to))
      if self.bias then
        n.b_ih, n.b_hh = "bias_ih" .. sfx, "bias_hh" .. sfx
        self[n.b_ih] = nn.Parameter(dl.empty(G, to))
        self[n.b_hh] = nn.Parameter(dl.empty(G, to))
      end
      if proj > 0 then
        n.hr = "weight_hr" .. sfx
        self[n.hr] = nn.Parameter(dl.empty(proj, hidden_size, to))
      end
      names[#names + 1] = n
    end
  end
  rawset(self, "_names", names) -- read at each call, so a replaced parameter is used
  self:reset_parameters()
end

-- every parameter uniform in [-1/sqrt(hidden), 1/sqrt(hidden)], as PyTorch's
local function reset_parameters(self)
  local bound = 1 / sqrt(self.hidden_size)
  dl.no_grad(function()
    for _, p in ipairs(self:parameters()) do p:uniform_(-bound, bound) end
  end)
end

-- the initial state as [L*D, B, Hout] (and c [L*D, B, H]), or nil
local function layer_state(self, label, state, batched, B, input)
  if state == nil then return nil end
  local LD = self.num_layers * (self.bidirectional and 2 or 1)
  local Hout = self.proj_size > 0 and self.proj_size or self.hidden_size
  local function want(n) return batched and {LD, B, n} or {LD, n} end
  local layout = batched and "[num_layers * num_directions, batch, hidden]" or "[num_layers * num_directions, hidden]"
  return given_state(label, self.mode == "LSTM", state, {"h_0", "c_0"}, want(Hout), want(self.hidden_size), input,
    layout, batched, 2)
end

local function layer_forward(self, input, state)
  local label = self:_label()
  local names, mode = self._names, self.mode
  local nd = check_input(label, input, 3, self.batch_first and "[B, T, in]" or "[T, B, in]", self.input_size,
    rawget(self, names[1].ih))
  local batched = nd == 3
  -- time-major [T, B, in] inside
  local x = batched and (self.batch_first and input:transpose(1, 2) or input) or input:unsqueeze(2)
  local T, B = x:size(1), x:size(2)
  if T == 0 then raise(fmt("%s: input %s has no time steps", label, shape_str(input))) end
  local h0, c0 = layer_state(self, label, state, batched, B, input)
  local D = self.bidirectional and 2 or 1
  local Hout = self.proj_size > 0 and self.proj_size or self.hidden_size
  local to = {dtype = input.dtype, device = input.device}
  local hs, cs = {}, {}
  for l = 1, self.num_layers do
    local outs = {}
    for d = 1, D do
      local k = (l - 1) * D + d
      local n = names[k]
      local w = {ih = rawget(self, n.ih), hh = rawget(self, n.hh), b_ih = rawget(self, n.b_ih),
        b_hh = rawget(self, n.b_hh), hr = n.hr and rawget(self, n.hr)}
      local h = h0 and h0:select(1, k) or zeros(B, Hout, to)
      local c = mode == "LSTM" and (c0 and c0:select(1, k) or zeros(B, self.hidden_size, to)) or nil
      outs[d], hs[k], cs[k] = scan(mode, x, h, c, w, d == 2)
    end
    x = D == 2 and cat(outs, 3) or outs[1]
    -- between layers, not after the last
    if l < self.num_layers and self.dropout > 0 and self.training then x = dropout(x, self.dropout, true) end
  end
  local h_n = stack(hs, 1)
  local c_n = mode == "LSTM" and stack(cs, 1) or nil
  if not batched then
    x, h_n = x:squeeze(2), h_n:squeeze(2)
    c_n = c_n and c_n:squeeze(2)
  elseif self.batch_first then
    x = x:transpose(1, 2):contiguous()
  end
  if mode == "LSTM" then return x, {h_n, c_n} end
  return x, h_n
end

local function layer_repr(self)
  local s = fmt("%d, %d", self.input_size, self.hidden_size)
  if self.proj_size ~= 0 then s = s .. fmt(", proj_size=%d", self.proj_size) end
  if self.num_layers ~= 1 then s = s .. fmt(", num_layers=%d", self.num_layers) end
  if not self.bias then s = s .. ", bias=False" end
  if self.batch_first then s = s .. ", batch_first=True" end
  if self.dropout ~= 0 then s = s .. ", dropout=" .. pyfloat(self.dropout) end
  if self.bidirectional then s = s .. ", bidirectional=True" end
  return s
end

-- RNN(input_size, hidden_size, {num_layers = 1, nonlinearity = "tanh",
-- bias = true, batch_first = false, dropout = 0, bidirectional = false,
-- dtype, device}); LSTM(..., {..., proj_size = 0}) and GRU(...) take the
-- same options but nonlinearity
local function layer_class(name)
  local M = nn.Module:extend(name)
  nn[name] = M
  local fn = "dl.nn." .. name
  local allowed = {}
  for k in pairs(layer_opts) do allowed[k] = true end
  if name == "RNN" then allowed.nonlinearity = true end
  if name == "LSTM" then allowed.proj_size = true end
  function M:init(input_size, hidden_size, opts)
    opts = check_options(fn, opts, allowed)
    local mode = name == "RNN" and rnn_mode(fn, opts.nonlinearity) or name
    if name == "RNN" then self.nonlinearity = mode == "RNN_RELU" and "relu" or "tanh" end
    init_layer(self, fn, mode, input_size, hidden_size, opts)
  end
  M.reset_parameters = reset_parameters
  M.forward = layer_forward
  M.extra_repr = layer_repr
  -- PyTorch code calls it after moving a model to cuDNN; weights are used where they are
  function M:flatten_parameters() end
  function M:_label() return fmt("%s(%d, %d)", name, self.input_size, self.hidden_size) end
  return M
end
layer_class("RNN")
layer_class("LSTM")
layer_class("GRU")

---------------------------------------------------------------------------
-- RNNCell, LSTMCell, GRUCell: one step, on [B, in] or unbatched [in]
---------------------------------------------------------------------------

local function cell_state(self, label, state, batched, B, input)
  local H = self.hidden_size
  local want = batched and {B, H} or {H}
  local layout = batched and "[batch, hidden_size]" or "[hidden_size]"
  if state == nil then
    local to = {dtype = input.dtype, device = input.device}
    return zeros(B, H, to), self.mode == "LSTM" and zeros(B, H, to) or nil
  end
  return given_state(label, self.mode == "LSTM", state, {"h", "c"}, want, want, input, layout, batched, 1)
end

local function cell_forward(self, input, state)
  local label = self:_label()
  local mode = self.mode
  local w_ih, w_hh, b_ih, b_hh = self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
  local batched = check_input(label, input, 2, "[B, in]", self.input_size, w_ih) == 2
  local x = batched and input or input:unsqueeze(1)
  local h, c = cell_state(self, label, state, batched, x:size(1), input)
  if mode == "GRU" then
    h = gru_cell_step(affine(x, w_ih:t(), b_ih), affine(h, w_hh:t(), b_hh), h)
  else
    local pre = addmm(affine(x, w_ih:t(), b_ih and b_ih + b_hh), h, w_hh:t())
    if mode == "LSTM" then
      h, c = lstm_cell_step(pre, c)
    else
      h = MODES[mode].step(pre)
    end
  end
  if not batched then
    h = h:squeeze(1)
    c = c and c:squeeze(1)
  end
  if mode == "LSTM" then return h, c end
  return h
end

local function cell_repr(self)
  local s = fmt("%d, %d", self.input_size, self.hidden_size)
  if not self.bias then s = s .. ", bias=False" end
  if self.nonlinearity and self.nonlinearity ~= "tanh" then s = s .. ", nonlinearity=" .. self.nonlinearity end
  return s
end

-- RNNCell(input_size, hidden_size, {bias = true, nonlinearity = "tanh",
-- dtype, device}); LSTMCell and GRUCell take the same options but
-- nonlinearity. Parameters weight_ih [G*H, in], weight_hh [G*H, H],
-- bias_ih, bias_hh [G*H], uniform in [-1/sqrt(H), 1/sqrt(H)].
local function cell_class(name, kind)
  local M = nn.Module:extend(name)
  nn[name] = M
  local fn = "dl.nn." .. name
  local allowed = {bias = true, dtype = true, device = true, nonlinearity = kind == "RNN" or nil}
  function M:init(input_size, hidden_size, opts)
    opts = check_options(fn, opts, allowed)
    check_count(fn, 1, "input_size", input_size, 1)
    check_count(fn, 2, "hidden_size", hidden_size, 1)
    local mode = kind == "RNN" and rnn_mode(fn, opts.nonlinearity) or kind
    self.mode = mode
    self.input_size, self.hidden_size = input_size, hidden_size
    self.bias = bool_opt(fn, opts, "bias", true)
    if kind == "RNN" then self.nonlinearity = mode == "RNN_RELU" and "relu" or "tanh" end
    local to = {dtype = opts.dtype, device = opts.device}
    local G = MODES[mode].gates * hidden_size
    self.weight_ih = nn.Parameter(dl.empty(G, input_size, to))
    self.weight_hh = nn.Parameter(dl.empty(G, hidden_size, to))
    if self.bias then
      self.bias_ih = nn.Parameter(dl.empty(G, to))
      self.bias_hh = nn.Parameter(dl.empty(G, to))
    end
    self:reset_parameters()
  end
  M.reset_parameters = reset_parameters
  M.forward = cell_forward
  M.extra_repr = cell_repr
  function M:_label() return fmt("%s(%d, %d)", name, self.input_size, self.hidden_size) end
  return M
end
cell_class("RNNCell", "RNN")
cell_class("LSTMCell", "LSTM")
cell_class("GRUCell", "GRU")

return nn
