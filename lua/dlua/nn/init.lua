-- dl.nn: modules, layers, activations, losses, initialisation, utilities.
-- `dl.nn.functional` (alias `dl.F`) holds the functional form of every layer,
-- activation and loss; each file below adds its own entries to it.
local dl = require "dlua"

local nn = {}
dl.nn = nn
nn.functional = {}
dl.F = nn.functional

require "dlua.nn.module"       -- Module, Parameter
require "dlua.nn.containers"   -- Sequential, ModuleList, Residual, Identity, Flatten
require "dlua.nn.initializers" -- nn.init
require "dlua.nn.activation"   -- ReLU, GELU, Softmax, ... and their F forms
require "dlua.nn.loss"         -- MSELoss, CrossEntropyLoss, ... and their F forms
require "dlua.nn.layers"       -- Linear, RBF, Dropout, BatchNorm1d/2d/3d and their F forms
require "dlua.nn.conv"         -- Conv1d/2d/3d, ConvTranspose1d/2d, Unfold, Fold and their F forms
require "dlua.nn.pool"         -- Max/AvgPool1d/2d/3d, adaptive pools and their F forms
require "dlua.nn.resample"     -- F.pad, F.interpolate / Upsample, PixelShuffle / PixelUnshuffle
require "dlua.nn.norm"         -- LayerNorm, GroupNorm, InstanceNorm, RMSNorm, Dropout2d, Unflatten
require "dlua.nn.embedding"    -- Embedding, F.embedding, F.one_hot
require "dlua.nn.rnn"          -- RNN, LSTM, GRU and their cells
require "dlua.nn.attention"    -- F.scaled_dot_product_attention, MultiheadAttention
require "dlua.nn.transformer"  -- TransformerEncoderLayer / DecoderLayer, TransformerEncoder
require "dlua.nn.utils"        -- nn.utils: clip_grad_norm_, penalties, ...
require "dlua.nn.parallel"     -- DistributedDataParallel

return nn
