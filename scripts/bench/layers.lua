-- layers.lua — two small layers, forward + backward, one thread:
--   softmax-ce  cross-entropy of 128x10 logits against 128 class labels
--   batchnorm   BatchNorm1d(256) in train mode on a 128x256 batch, with a
--               fixed output gradient
-- Twin: layers.py. Prints the best of 5 batches of ITERS steps as
--   RESULT softmax-ce dlua <us> us/step
--   RESULT batchnorm dlua <us> us/step
-- Usage: dlua layers.lua [ITERS]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local B = require "bench_util"
local dl = require "dlua"
local nn = dl.nn
local iters = tonumber(arg[1]) or 2000
dl.manual_seed(0)

local logits = dl.randn(128, 10):requires_grad_()
local labels = dl.randint(1, 11, {128})
local ce = nn.CrossEntropyLoss()
local t_ce = B.best_of(function()
  logits.grad = nil
  ce(logits, labels):backward()
end, iters)

local bn = nn.BatchNorm1d(256)
local x = dl.randn(128, 256):requires_grad_()
local g = dl.randn(128, 256)
local params = bn:parameters()
local t_bn = B.best_of(function()
  x.grad = nil
  for i = 1, #params do params[i].grad = nil end
  bn(x):backward(g)
end, iters // 4)

print(string.format("RESULT softmax-ce dlua %.2f us/step", t_ce * 1e6))
print(string.format("RESULT batchnorm dlua %.2f us/step", t_bn * 1e6))
