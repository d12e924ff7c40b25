-- scripts/seed/vanishing_gradients.lua — the seed lecture's vanishing-gradient
-- experiments.
--
-- (a) A chain of 50 single-unit layers, Linear(1, 1) + Sigmoid each, default
--     (PyTorch-style) init, MSE against random targets on a batch of 64
--     N(0, 1) inputs, float64 (in float32 the first layers' gradients would
--     underflow to exactly 0). Printed: the gradient norm of each layer's
--     parameters (weight and bias; every 5th layer) without clipping and after
--     dl.nn.utils.clip_grad_norm_(model, 1e-3).
--     Expect: the norm falls by orders of magnitude towards the input (each
--     layer multiplies the backward signal by sigmoid' <= 1/4 times |w|), so
--     layers 1-5 get ~1e-50 of layer 50's gradient. Clipping rescales
--     the WHOLE gradient vector by one factor (max_norm / total norm) when the
--     total is too large: it bounds the step and so fixes *exploding*
--     gradients, but it cannot fix *vanishing* ones — the ratio between the
--     first and last layers is exactly the same after clipping (see the
--     ratio column), so the early layers still do not learn.
-- (b) A 20-layer ReLU MLP of 256 units on 512 N(0, 1) inputs: the standard
--     deviation of each layer's activations with the default init
--     (U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance 1/(3 fan_in): each layer
--     multiplies the activations' second moment by ~1/6) and with He init
--     (dl.nn.init.kaiming_normal_, std sqrt(2 / fan_in), zero biases).
--     Expect: with the default init the std shrinks ~0.4x per layer until the
--     biases dominate; with He init it stays of order 1 through all 20 layers.
-- Plots: gradients.png/.svg (log scale) and activations.png/.svg in the out dir.
--
--   dlua scripts/seed/vanishing_gradients.lua [--quick] [--out DIR]
local dl = require "dlua"
local nn = dl.nn

-- the shared command line (scripts/seed/seed_cli.lua)
package.path = ((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local O = require("seed_cli").options("vanishing_gradients", {})

local function plot(series, name, opts)
  if not (dl.plot and dl.plot.lines) then
    print("note: dl.plot.lines is not available, no plot written for " .. name)
    return
  end
  for _, ext in ipairs({"png", "svg"}) do
    opts.file = O.out .. "/" .. name .. "." .. ext
    dl.plot.lines(series, opts)
    print("plot: " .. opts.file)
  end
end

---------------------------------------------------------------------------
-- (a) 50-layer sigmoid chain

local DEPTH, BATCH, MAX_NORM = 50, 64, 1e-3
dl.manual_seed(1)
local layers, linears = {}, {}
for k = 1, DEPTH do
  local lin = nn.Linear(1, 1, {dtype = "float64"})
  linears[k] = lin
  layers[#layers + 1] = lin
  layers[#layers + 1] = nn.Sigmoid()
end
local chain = nn.Sequential(table.unpack(layers))
local x = dl.randn(BATCH, 1, {dtype = "float64"})
local target = dl.rand(BATCH, 1, {dtype = "float64"})

-- per-layer gradient norms sqrt(|dW|^2 + |db|^2)
local function layer_norms()
  local out = {}
  for k, lin in ipairs(linears) do
    out[k] = math.sqrt(lin.weight.grad:square():sum():item() + lin.bias.grad:square():sum():item())
  end
  return out
end

chain:zero_grad()
nn.MSELoss()(chain(x), target):backward()
local plain = layer_norms()
local total = nn.utils.clip_grad_norm_(chain, MAX_NORM)
local clipped = layer_norms()
local total_after = 0
for _, v in ipairs(clipped) do total_after = total_after + v * v end
total_after = math.sqrt(total_after)

print(string.format("(a) %d x [Linear(1,1) + Sigmoid], batch %d, MSE, float64: gradient norm per layer", DEPTH, BATCH))
print(string.format("    total norm %.4e; clip_grad_norm_(max_norm = %g) -> %.4e", total, MAX_NORM, total_after))
print(string.format("%6s %14s %14s %16s", "layer", "grad_norm", "clipped", "ratio_to_last"))
for k = 5, DEPTH, 5 do
  print(string.format("%6d %14.4e %14.4e %16.4e", k, plain[k], clipped[k], plain[k] / plain[DEPTH]))
end
local ks = {}
for k = 1, DEPTH do ks[k] = k end
plot({{name = "no clipping", x = ks, y = plain}, {name = "clip_grad_norm_ " .. MAX_NORM, x = ks, y = clipped}},
  "gradients", {title = "50-layer sigmoid chain: gradient norm per layer", xlabel = "layer",
    ylabel = "gradient norm", logy = true})

---------------------------------------------------------------------------
-- (b) 20-layer ReLU MLP, default vs He init

local MLP_DEPTH, WIDTH = 20, 256
local NB = O.quick and 128 or 512
local function mlp(he)
  local mods = {}
  for k = 1, MLP_DEPTH do
    local lin = nn.Linear(WIDTH, WIDTH)
    if he then
      nn.init.kaiming_normal_(lin.weight, {nonlinearity = "relu"})
      nn.init.zeros_(lin.bias)
    end
    mods[#mods + 1] = lin
    mods[#mods + 1] = nn.ReLU()
  end
  return mods
end

-- std of the activations after each Linear + ReLU on one random batch
local function activation_stds(mods, input)
  local out, h = {}, input
  dl.no_grad(function()
    for k = 1, #mods, 2 do
      h = mods[k + 1](mods[k](h))
      out[#out + 1] = h:std():item()
    end
  end)
  return out
end

dl.manual_seed(2)
local input = dl.randn(NB, WIDTH)
dl.manual_seed(3)
local std_default = activation_stds(mlp(false), input)
dl.manual_seed(3)
local std_he = activation_stds(mlp(true), input)

print()
print(string.format("(b) %d x [Linear(%d,%d) + ReLU], %d N(0,1) inputs (std %.3f): activation std per layer",
  MLP_DEPTH, WIDTH, WIDTH, NB, input:std():item()))
print(string.format("%6s %14s %14s", "layer", "default_init", "he_init"))
for k = 2, MLP_DEPTH, 2 do
  print(string.format("%6d %14.4e %14.4e", k, std_default[k], std_he[k]))
end
local ls = {}
for k = 1, MLP_DEPTH do ls[k] = k end
plot({{name = "default init", x = ls, y = std_default}, {name = "He (kaiming_normal_)", x = ls, y = std_he}},
  "activations", {title = "20-layer ReLU MLP: activation std per layer", xlabel = "layer",
    ylabel = "activation std", logy = true})
