-- dl.datasets: ready-made datasets read from files installed on the machine.
-- fashion_mnist reads Debian's dataset-fashion-mnist package; mnist reads
-- the same IDX layout from a root the caller names.
local dl = require "dlua"

local datasets = {}
dl.datasets = datasets

datasets.FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The path of base (or base.gz) under root, or an error naming both.
local function find_file(fn, root, base, hint)
  for _, p in ipairs({root .. "/" .. base .. ".gz", root .. "/" .. base}) do
    if exists(p) then return p end
  end
  error(string.format("dl.datasets.%s: no %s[.gz] under %s%s", fn, base, root, hint), 3)
end

-- Reads one split of an MNIST-layout dataset (images N x 28 x 28 uint8,
-- labels N uint8 in 0..9).
local function load_mnist_like(fn, opts, default_root, hint, classes)
  opts = opts or {}
  if type(opts) ~= "table" then
    error(string.format("dl.datasets.%s: bad argument #1 (options table expected, got %s)", fn, type(opts)), 3)
  end
  for k in pairs(opts) do
    if k ~= "split" and k ~= "root" and k ~= "flatten" then
      error(require("dlua.checks").unknown_option("dl.datasets." .. fn, k, {"split", "root", "flatten"}), 3)
    end
  end
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then
    error(string.format("dl.datasets.%s: split must be \"train\" or \"test\", got %s", fn, tostring(split)), 3)
  end
  local root = opts.root or default_root
  if type(root) ~= "string" then
    error(string.format("dl.datasets.%s: root must be a directory path (a string)", fn), 3)
  end
  local prefix = split == "train" and "train" or "t10k"
  local ipath = find_file(fn, root, prefix .. "-images-idx3-ubyte", hint)
  local lpath = find_file(fn, root, prefix .. "-labels-idx1-ubyte", hint)
  local images = dl.data.read_idx(ipath)
  local labels = dl.data.read_idx(lpath)
  if images.dtype ~= "uint8" or images:dim() ~= 3 or images:size(2) ~= 28 or images:size(3) ~= 28 then
    error(string.format("dl.datasets.%s: %s holds %s %s, expected uint8 N x 28 x 28 images", fn, ipath,
      images.dtype, table.concat(images:size(), "x")), 3)
  end
  if labels.dtype ~= "uint8" or labels:dim() ~= 1 then
    error(string.format("dl.datasets.%s: %s holds %s %s, expected N uint8 labels", fn, lpath,
      labels.dtype, table.concat(labels:size(), "x")), 3)
  end
  if labels:size(1) ~= images:size(1) then
    error(string.format("dl.datasets.%s: %d images in %s but %d labels in %s", fn, images:size(1), ipath,
      labels:size(1), lpath), 3)
  end
  if labels:numel() > 0 and labels:max():item() > 9 then
    error(string.format("dl.datasets.%s: %s holds label %d, expected 0..9", fn, lpath, labels:max():item()), 3)
  end
  local x = images:float():div_(255)
  if opts.flatten ~= false then x = x:view(images:size(1), 784) end
  local y = labels:long():add_(1)
  return x, y, classes
end

local FASHION_CLASSES = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
local DIGITS = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

-- images (float32 N x 784 in [0, 1], or N x 28 x 28 with flatten = false),
-- labels (int64, 1..10), class names
function datasets.fashion_mnist(opts)
  local classes = {table.unpack(FASHION_CLASSES)}
  return load_mnist_like("fashion_mnist", opts, datasets.FASHION_MNIST_ROOT,
    " (install Debian's dataset-fashion-mnist package: scripts/install-deps.sh)", classes)
end

-- The same for MNIST digits; the root must be given (no package ships it).
function datasets.mnist(opts)
  if type(opts) ~= "table" or opts.root == nil then
    error("dl.datasets.mnist: give the directory holding the MNIST files: dl.datasets.mnist({root = ...})", 2)
  end
  local classes = {table.unpack(DIGITS)}
  return load_mnist_like("mnist", opts, nil, " (download MNIST's four IDX files there)", classes)
end

return datasets
