-- Working calls for what the sweep's search cannot find on its own
-- (spec/sweep/sweep.lua). Each entry gives one maker per argument; a maker
-- returns a fresh value each time it is called, since in-place calls change
-- their arguments. The sweep runs in an empty directory, so relative paths
-- are files of its own.
local S = {}

-- makers
local function v(x) return function() return x end end
local function T() return dl.randn(2, 3) end
local function T33() return dl.randn(3, 3) end
local function T32() return dl.randn(3, 2) end
local function B3() return dl.randn(2, 3, 3) end
local function V3() return dl.randn(3) end
local function P() return dl.rand(2, 3) * 0.8 + 0.1 end -- probabilities
local function idx() return dl.tensor({1, 2}, {dtype = "int64"}) end
local function idx23() return dl.tensor({{1, 2, 1}, {2, 1, 2}}, {dtype = "int64"}) end
local function mask() return dl.randn(2, 3):gt(0) end
local function params() return {dl.nn.Parameter(dl.randn(2, 3))} end
local function sym() local a = dl.randn(3, 3); return a + a:t() end
local function square(x) return (x * x):sum() end
local function lin() return dl.nn.Linear(3, 2) end
local function opt() return dl.optim.SGD(params(), {lr = 0.1}) end
local function ds() return dl.data.TensorDataset(dl.randn(4, 3), dl.randn(4)) end
-- dl.dist's calls need it started: a world of one, this process
local function dist(maker)
  return function()
    dl.dist.init()
    return maker()
  end
end

S.instances = {
  -- the instance a base class's methods are swept on
  ["dl.nn.Module"] = lin,
  ["dl.optim.Optimizer"] = opt,
  ["dl.data.Dataset"] = ds,
  ["dl.utils.Progress"] = function() return dl.utils.progress(3) end,
  ["dl.optim.lr_scheduler.LRScheduler"] = function() return dl.optim.lr_scheduler.StepLR(opt(), 2) end,
}

S.calls = {
  -- classes
  ["dl.data.DataLoader"] = function() return {ds, v({batch_size = 2})} end,
  ["dl.data.DistributedSampler"] = function() return {ds, v({num_replicas = 2, rank = 1})} end,
  ["dl.nn.DistributedDataParallel"] = dist(function() return {lin} end),
  ["dl.dist.init"] = function() return {v({timeout = 60})} end,
  -- ends MPI for the process, which cannot start it again: never called here
  -- (spec/dist_spec.lua's scripts call it; it takes no argument)
  ["dl.dist.finalize"] = false,
  ["dl.dist.destroy_process_group"] = false,
  ["dl.dist.all_reduce"] = dist(function() return {T} end),
  ["dl.dist.broadcast"] = dist(function() return {T} end),
  ["dl.dist.all_gather"] = dist(function() return {T} end),
  ["dl.dist.reduce_scatter"] = dist(function() return {T} end),
  ["dl.dist.barrier"] = dist(function() return {} end),
  ["dl.dist._reducer"] = dist(function() return {params, v(1024)} end),
  ["DistributedDataParallel:no_sync"] = dist(function()
    return {function() return dl.nn.DistributedDataParallel(lin()) end, v(function() end)}
  end),
  ["dl.data.Subset"] = function() return {ds, v({1, 2})} end,
  ["dl.nn.Residual"] = function() return {function() return dl.nn.Linear(3, 3) end} end,
  ["dl.optim.SGD"] = function() return {params, v({lr = 0.1})} end,
  ["dl.optim.lr_scheduler.LRScheduler"] = false, -- the base class: its subclasses are swept
  ["dl.optim.lr_scheduler.StepLR"] = function() return {opt, v(2)} end,
  ["dl.optim.lr_scheduler.MultiStepLR"] = function() return {opt, v({2, 4})} end,
  ["dl.optim.lr_scheduler.ExponentialLR"] = function() return {opt, v(0.9)} end,
  ["dl.optim.lr_scheduler.LinearLR"] = function() return {opt} end,
  ["dl.optim.lr_scheduler.LambdaLR"] = function() return {opt, v(function(e) return 0.9 ^ e end)} end,
  ["dl.optim.lr_scheduler.CosineAnnealingLR"] = function() return {opt, v(10)} end,
  ["dl.optim.lr_scheduler.CosineAnnealingWarmRestarts"] = function() return {opt, v(10)} end,
  ["dl.optim.lr_scheduler.OneCycleLR"] = function() return {opt, v(0.5), v({total_steps = 10})} end,
  ["dl.optim.lr_scheduler.CyclicLR"] = function() return {opt, v(0.01), v(0.1)} end,
  ["dl.optim.lr_scheduler.ReduceLROnPlateau"] = function() return {opt} end,
  -- functions
  ["dl.addmm"] = function() return {function() return dl.randn(2, 2) end, T, T32} end,
  ["dl.mm"] = function() return {T, T33} end,
  ["dl.bmm"] = function() return {B3, B3} end,
  ["dl.narrow"] = function() return {T, v(2), v(1), v(2)} end,
  ["dl.where"] = function() return {mask, T, T} end,
  ["Tensor:where"] = function() return {T, mask, T} end,
  ["dl.masked_fill"] = function() return {T, mask, v(0.5)} end,
  ["dl.masked_fill_"] = function() return {T, mask, v(0.5)} end,
  ["dl.masked_select"] = function() return {T, mask} end,
  ["dl.index_add"] = function() return {T, v(1), idx, T} end,
  ["dl.index_copy"] = function() return {T, v(1), idx, T} end,
  ["dl.index_fill"] = function() return {T, v(1), idx, v(0.5)} end,
  ["dl.scatter"] = function() return {T, v(2), idx23, T} end,
  ["dl.scatter_add"] = function() return {T, v(2), idx23, T} end,
  ["dl.rbf"] = function() return {T, T33, V3} end,
  ["dl.F.rbf"] = function() return {T, T33, V3} end,
  ["dl.F.binary_cross_entropy"] = function() return {P, function() return dl.rand(2, 3):round() end} end,
  ["dl.linalg.eigh"] = function() return {sym} end,
  ["dl.nn.init.calculate_gain"] = function() return {v("relu")} end,
  ["Tensor:item"] = function() return {function() return dl.tensor(0.5) end} end,
  ["Tensor:retain_grad"] = function() return {function() return dl.randn(2, 3):requires_grad_() * 2 end} end,
  ["dl.no_grad"] = function() return {v(function() return 1 end)} end,
  ["dl.enable_grad"] = function() return {v(function() return 1 end)} end,
  ["dl.set_grad_enabled"] = function() return {v(true)} end,
  ["dl.autograd.Function"] = function()
    return {v({forward = function(_, x) return x * 2 end, backward = function(_, g) return g * 2 end})}
  end,
  ["dl.autograd.backward"] = function() return {function() return (dl.randn(3):requires_grad_() * 2):sum() end} end,
  ["dl.autograd.grad"] = function()
    local x = dl.randn(3):requires_grad_()
    return {function() return (x * x):sum() end, v(x)}
  end,
  ["dl.autograd.gradcheck"] = function() return {v(square), function() return {dl.randn(3):double():requires_grad_()} end} end,
  ["dl.autograd.jvp"] = function() return {v(square), function() return {dl.randn(3)} end, function() return {dl.randn(3)} end} end,
  ["dl.autograd.jacobian"] = function() return {v(function(x) return x * 2 end), V3} end,
  ["dl.autograd.hvp"] = function() return {v(square), V3, V3} end,
  ["dl.cluster.rbf_init"] = function() return {function() return dl.nn.RBF(3, 2) end, function() return dl.randn(8, 3) end} end,
  ["dl.data.random_split"] = function() return {ds, v({0.5, 0.5})} end,
  ["dl.save"] = function() return {v("sweep-save.dlua"), T} end,
  ["dl.load"] = function() dl.save("sweep-load.dlua", dl.randn(2)); return {v("sweep-load.dlua")} end,
  ["dl.data.read_csv"] = function()
    local f = assert(io.open("sweep.csv", "w")); f:write("a,b\n1,2\n3,4\n"); f:close()
    return {v("sweep.csv")}
  end,
  ["dl.data.read_idx"] = function()
    local f = assert(io.open("sweep.idx", "wb")); f:write("\0\0\8\1\0\0\0\2\1\2"); f:close()
    return {v("sweep.idx")}
  end,
  ["dl.plot.lines"] = function() return {v({loss = {1, 0.5, 0.25}}), v({file = "sweep-plot.svg"})} end,
  -- methods (the receiver first)
  ["Module:forward"] = false, -- the base class has no forward: an error is its answer
  ["Linear:forward"] = function() return {lin, T} end,
  ["BatchNorm1d:forward"] = function() return {function() return dl.nn.BatchNorm1d(3) end, T} end,
  ["RBF:forward"] = function() return {function() return dl.nn.RBF(3, 2) end, T} end,
  ["RBF:set_centers"] = function() return {function() return dl.nn.RBF(3, 2) end, T} end,
  ["RBF:set_sigmas"] = function() return {function() return dl.nn.RBF(3, 2) end, function() return dl.ones(2) end} end,
  ["RBF:init_kmeans"] = function() return {function() return dl.nn.RBF(3, 2) end, function() return dl.randn(8, 3) end} end,
  ["Module:__call"] = function() return {lin, T} end,
  ["Module:add_module"] = function() return {lin, v("extra"), function() return dl.nn.ReLU() end} end,
  ["Module:apply"] = function() return {lin, v(function() end)} end,
  ["Module:get_submodule"] = function() return {function() return dl.nn.Sequential(dl.nn.ReLU()) end, v("0")} end,
  ["Module:load_state_dict"] = function() return {lin, function() return lin():state_dict() end} end,
  ["Module:register_buffer"] = function() return {lin, v("buf"), T} end,
  ["Module:register_parameter"] = function() return {lin, v("p"), function() return dl.nn.Parameter(dl.randn(2)) end} end,
  ["Optimizer:add_param_group"] = function() return {opt, function() return {params = params()} end} end,
  ["Optimizer:load_state_dict"] = function() return {opt, function() return opt():state_dict() end} end,
  ["Optimizer:step"] = function() return {opt} end,
  ["LBFGS:step"] = function()
    local p = dl.nn.Parameter(dl.randn(3))
    local o = dl.optim.LBFGS({p})
    return {v(o), v(function() o:zero_grad(); local l = (p * p):sum(); l:backward(); return l end)}
  end,
  ["CG:step"] = function()
    local p = dl.nn.Parameter(dl.randn(3))
    local o = dl.optim.CG({p})
    return {v(o), v(function() o:zero_grad(); local l = (p * p):sum(); l:backward(); return l end)}
  end,
  ["Dataset:__len"] = function() return {ds} end,
  ["Module:register_module"] = function() return {lin, v("extra"), function() return dl.nn.ReLU() end} end,
  ["dl.utils.progress:set_postfix_str"] = function() return {S.instances["dl.utils.Progress"], v("loss=1")} end,
}
for _, name in ipairs({"LBFGS", "CG"}) do
  local function o() return dl.optim[name](params()) end
  S.calls[name .. ":load_state_dict"] = function() return {o, function() return o():state_dict() end} end
end
S.calls["LRScheduler:load_state_dict"] = function()
  local function s() return dl.optim.lr_scheduler.StepLR(opt(), 2) end
  return {s, function() return s():state_dict() end}
end
for _, name in ipairs({"LambdaLR", "ReduceLROnPlateau"}) do
  local args = {LambdaLR = {function(e) return 0.9 ^ e end}, ReduceLROnPlateau = {}}
  local function s() return dl.optim.lr_scheduler[name](opt(), table.unpack(args[name])) end
  S.calls[name .. ":load_state_dict"] = function() return {s, function() return s():state_dict() end} end
end
-- convolution and pooling: images [N, C, *S] with 1 to 3 spatial dims
local function img(nd) return function() return dl.randn(table.unpack(({{2, 2, 6}, {2, 2, 5, 5}, {1, 2, 4, 4, 4}})[nd])) end end
for nd = 1, 3 do
  local w = ({{3, 2, 3}, {3, 2, 3, 3}, {3, 2, 2, 2, 2}})[nd]
  S.calls[("dl.F.conv%dd"):format(nd)] = function() return {img(nd), function() return dl.randn(w) end} end
  S.calls[("dl.F.max_pool%dd"):format(nd)] = function() return {img(nd), v(2)} end
  S.calls[("dl.F.avg_pool%dd"):format(nd)] = function() return {img(nd), v(2)} end
  S.calls[("Conv%dd:forward"):format(nd)] = function()
    return {function() return dl.nn[("Conv%dd"):format(nd)](2, 3, 2) end, img(nd)}
  end
  S.calls[("MaxPool%dd:forward"):format(nd)] = function()
    return {function() return dl.nn[("MaxPool%dd"):format(nd)](2) end, img(nd)}
  end
  S.calls[("AvgPool%dd:forward"):format(nd)] = function()
    return {function() return dl.nn[("AvgPool%dd"):format(nd)](2) end, img(nd)}
  end
end
S.calls["dl.im2col"] = function() return {img(2), v(2)} end
S.calls["dl.max_pool"] = function() return {img(2), v(2)} end
S.calls["dl.convolution"] = function() return {img(2), function() return dl.randn(3, 2, 3, 3) end} end
S.calls["dl.F.unfold"] = S.calls["dl.im2col"]
S.calls["dl.col2im"] = function() return {function() return dl.randn(2, 8, 16) end, v({5, 5}), v(2)} end
S.calls["dl.F.fold"] = S.calls["dl.col2im"]
S.calls["Unfold:forward"] = function() return {function() return dl.nn.Unfold(2) end, img(2)} end
S.calls["Fold:forward"] = function()
  return {function() return dl.nn.Fold({5, 5}, 2) end, function() return dl.randn(2, 8, 16) end}
end
S.calls["BatchNorm2d:forward"] = function() return {function() return dl.nn.BatchNorm2d(2) end, img(2)} end
S.calls["BatchNorm3d:forward"] = function() return {function() return dl.nn.BatchNorm3d(2) end, img(3)} end

-- image transforms, on a batch of images
local T = dl.data.transforms
S.calls["dl.data.transforms.Compose"] = function() return {v({function(x) return x end})} end
S.instances["dl.data.transforms.Compose"] = function() return T.Compose({T.RandomHorizontalFlip()}) end
S.calls["Compose:forward"] = function() return {S.instances["dl.data.transforms.Compose"], img(2)} end
S.calls["Compose:__call"] = S.calls["Compose:forward"]
S.calls["Normalize:forward"] = function() return {function() return T.Normalize(0.5, 0.25) end, img(2)} end
S.calls["RandomCrop:forward"] = function() return {function() return T.RandomCrop(4, {padding = 1}) end, img(2)} end
S.calls["RandomHorizontalFlip:forward"] = function() return {function() return T.RandomHorizontalFlip() end, img(2)} end

-- transposed convolution, resizing, adaptive pooling
for nd = 1, 3 do
  local w = ({{2, 3, 3}, {2, 3, 3, 3}, {2, 3, 2, 2, 2}})[nd]
  S.calls[("dl.F.conv_transpose%dd"):format(nd)] = function() return {img(nd), function() return dl.randn(w) end} end
  S.calls[("ConvTranspose%dd:forward"):format(nd)] = function()
    return {function() return dl.nn[("ConvTranspose%dd"):format(nd)](2, 3, 2) end, img(nd)}
  end
end
for nd = 1, 2 do
  for _, kind in ipairs({"avg", "max"}) do
    S.calls[("dl.F.adaptive_%s_pool%dd"):format(kind, nd)] = function() return {img(nd), v(2)} end
    local cls = ("Adaptive%sPool%dd"):format(kind == "avg" and "Avg" or "Max", nd)
    S.calls[cls .. ":forward"] = function() return {function() return dl.nn[cls](2) end, img(nd)} end
  end
end
S.calls["dl.F.pad"] = function() return {img(2), v({1, 1})} end
-- sequences: an embedding and its lookups, sampling
local function emb() return dl.nn.Embedding(5, 3) end
S.calls["Embedding:forward"] = function() return {emb, idx23} end
S.calls["Embedding:from_pretrained"] = function() return {function() return dl.randn(4, 3) end} end
S.calls["dl.multinomial"] = function() return {P, v(2)} end
S.calls["dl.lstm_cell"] = function() return {function() return dl.randn(2, 8) end, function() return dl.randn(2, 2) end} end
S.calls["dl.gru_cell"] = function()
  return {function() return dl.randn(2, 6) end, function() return dl.randn(2, 6) end, function() return dl.randn(2, 2) end}
end
S.calls["dl.F.interpolate"] = function() return {img(2), v({scale_factor = 2})} end
S.calls["dl.nn.Upsample"] = function() return {v({scale_factor = 2})} end
S.calls["Upsample:forward"] = function() return {function() return dl.nn.Upsample({scale_factor = 2}) end, img(2)} end
S.calls["dl.F.pixel_shuffle"] = function() return {function() return dl.randn(1, 8, 2, 2) end, v(2)} end
S.calls["dl.F.pixel_unshuffle"] = function() return {function() return dl.randn(1, 2, 4, 4) end, v(2)} end
S.calls["PixelShuffle:forward"] = function() return {function() return dl.nn.PixelShuffle(2) end, function() return dl.randn(1, 8, 2, 2) end} end
S.calls["PixelUnshuffle:forward"] = function() return {function() return dl.nn.PixelUnshuffle(2) end, function() return dl.randn(1, 2, 4, 4) end} end

-- recurrent layers (nn/rnn.lua): input [T, B, in] = [4, 2, 3], state [layers * dirs, B, hidden]
local function seq() return dl.randn(4, 2, 3) end
local function h14() return dl.zeros(1, 2, 4) end
local function x23() return dl.randn(2, 3) end
S.calls["RNN:forward"] = function() return {function() return dl.nn.RNN(3, 4) end, seq, h14} end
S.calls["GRU:forward"] = function() return {function() return dl.nn.GRU(3, 4) end, seq, h14} end
S.calls["LSTM:forward"] = function()
  return {function() return dl.nn.LSTM(3, 4) end, seq, function() return {h14(), h14()} end}
end
S.calls["RNNCell:forward"] = function()
  return {function() return dl.nn.RNNCell(3, 4) end, x23, function() return dl.zeros(2, 4) end}
end
S.calls["GRUCell:forward"] = function()
  return {function() return dl.nn.GRUCell(3, 4) end, x23, function() return dl.zeros(2, 4) end}
end
S.calls["LSTMCell:forward"] = function()
  return {function() return dl.nn.LSTMCell(3, 4) end, x23, function() return {dl.zeros(2, 4), dl.zeros(2, 4)} end}
end

-- attention and Transformer layers: sequences [L, B, E] with E = 4
local function seq4() return dl.randn(3, 2, 4) end
local function mha() return dl.nn.MultiheadAttention(4, 2) end
local function enc_layer() return dl.nn.TransformerEncoderLayer(4, 2, {dim_feedforward = 8}) end
local function dec_layer() return dl.nn.TransformerDecoderLayer(4, 2, {dim_feedforward = 8}) end
S.calls["MultiheadAttention:forward"] = function() return {mha, seq4, seq4, seq4} end
S.calls["TransformerEncoderLayer:forward"] = function() return {enc_layer, seq4} end
S.calls["TransformerDecoderLayer:forward"] = function() return {dec_layer, seq4, seq4} end
S.calls["dl.nn.TransformerEncoder"] = function() return {enc_layer, v(2)} end
S.calls["dl.nn.TransformerDecoder"] = function() return {dec_layer, v(2)} end
S.calls["TransformerEncoder:forward"] = function()
  return {function() return dl.nn.TransformerEncoder(enc_layer(), 2) end, seq4}
end
S.calls["TransformerDecoder:forward"] = function()
  return {function() return dl.nn.TransformerDecoder(dec_layer(), 2) end, seq4, seq4}
end

-- normalisation layers and the like
S.calls["dl.F.dropout2d"] = function() return {img(2)} end
S.calls["Dropout2d:forward"] = function() return {function() return dl.nn.Dropout2d(0.5) end, img(2)} end
S.calls["GroupNorm:forward"] = function() return {function() return dl.nn.GroupNorm(1, 2) end, img(2)} end
S.calls["InstanceNorm1d:forward"] = function() return {function() return dl.nn.InstanceNorm1d(2) end, img(1)} end
S.calls["InstanceNorm2d:forward"] = function() return {function() return dl.nn.InstanceNorm2d(2) end, img(2)} end
S.calls["LayerNorm:forward"] = function() return {function() return dl.nn.LayerNorm(5) end, img(2)} end
S.calls["RMSNorm:forward"] = function() return {function() return dl.nn.RMSNorm(5) end, img(2)} end
S.calls["Unflatten:forward"] = function() return {function() return dl.nn.Unflatten(2, {1, 2}) end, img(2)} end

-- the scalers: fitted first
for _, name in ipairs({"StandardScaler", "MinMaxScaler", "PCA", "ZCA"}) do
  local function fitted() local s = dl.data[name](); s:fit(dl.randn(8, 3)); return s end
  S.calls[name .. ":transform"] = function() return {fitted, function() return dl.randn(4, 3) end} end
  S.calls[name .. ":inverse_transform"] = S.calls[name .. ":transform"]
  S.calls[name .. ":load_state_dict"] = function() return {function() return dl.data[name]() end,
    function() return fitted():state_dict() end} end
end

-- names with no working call here, and why
S.no_call = {
  ["LBFGS:add_param_group"] = "one parameter group only, as PyTorch's LBFGS: add_param_group raises",
  ["CG:add_param_group"] = "one parameter group only, as LBFGS: add_param_group raises",
  ["Dataset:get"] = "abstract: each Dataset subclass defines get (the base's raises, naming the subclass)",
  ["Dataset:len"] = "abstract: each Dataset subclass defines len",
  ["dl.cuda.get_device_name"] = "needs a GPU",
  ["Tensor:cuda"] = "needs a GPU",
  ["Module:cuda"] = "needs a GPU",
  ["dl.datasets.mnist"] = "MNIST is not packaged (Fashion-MNIST is)",
}

return S
