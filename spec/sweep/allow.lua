-- Bad-looking inputs the sweep (spec/sweep/sweep.lua) must not count as
-- silent acceptances, each with the reason it is right to take them.
-- Keys: "<name> #<argument> <bad value>", or "<name> #<argument> *" for every
-- bad value at that position.
return {
  ["RNN:forward #3 nil"] = "no initial state: zeros, as PyTorch's RNN(x) with hx = None",
  ["LSTM:forward #3 nil"] = "no initial state: zeros, as PyTorch's LSTM(x) with hx = None",
  ["GRU:forward #3 nil"] = "no initial state: zeros, as PyTorch's GRU(x) with hx = None",
  ["RNNCell:forward #3 nil"] = "no initial state: zeros, as PyTorch's RNNCell(x) with hx = None",
  ["LSTMCell:forward #3 nil"] = "no initial state: zeros, as PyTorch's LSTMCell(x) with hx = None",
  ["GRUCell:forward #3 nil"] = "no initial state: zeros, as PyTorch's GRUCell(x) with hx = None",
  ["dl.save #2 *"] = "dl.save stores any Lua value (tensors, tables, strings, numbers), as torch.save stores any object",
  ["dl.optim.Optimizer #2 *"] = "the defaults table: any name = value pairs (subclasses read theirs)",
  ["dl.nn.state_dict_keys #1 *"] = "a state dict is a table of name = value pairs; {} and any names are valid",
  ["dl.utils.progress:set_postfix #2 *"] = "a table of name = value pairs shown after the bar, as tqdm's set_postfix",
  ["Tensor.__index #2 'abc'"] = "t.abc is nil, as a missing field of any Lua value (methods and properties are found)",
  ["Tensor.__index #2 {}"] = "t[{}] is Torch7's whole-tensor index (a table of ranges, none given)",
  ["Tensor.__newindex #2 {}"] = "t[{}] = v writes the whole tensor (Torch7's index: a table of ranges, none given)",
  ["Tensor.__index #2 '2'"] = "t['2'] is a (missing) field, not an index: Lua keeps strings and numbers apart",
  ["dl.tensor #1 {}"] = "dl.tensor({}) is an empty tensor, as torch.tensor([])",
  ["Module:add_module #3 nil"] = "registers an empty slot, as PyTorch's add_module(name, None)",
  ["Tensor:close #1 closed tensor"] = "closing is idempotent: a to-be-closed variable may close a tensor closed before",
  ["dl.nn.utils.clip_grad_norm_ #1 {}"] = "no parameters: the total norm is 0, as in PyTorch",
  ["dl.nn.utils.clip_grad_value_ #1 {}"] = "no parameters: nothing to clip, as in PyTorch",
  ["dl.nn.utils.l1_penalty #1 {}"] = "no parameters: the penalty is 0",
  ["dl.nn.utils.l2_penalty #1 {}"] = "no parameters: the penalty is 0",
  ["Tensor.__close #1 *"] = "Lua calls __close with the tensor only; called by hand with anything else it does nothing, as __gc",
  ["Module:register_buffer #3 nil"] = "registers an empty slot, as PyTorch's register_buffer(name, None)",
  ["Module:register_parameter #3 nil"] = "registers an empty slot, as PyTorch's register_parameter(name, None)",
  ["Module:register_module #3 nil"] = "registers an empty slot, as PyTorch's register_module(name, None)",
  ["Module:to #2 {}"] = "no dtype and no device: nothing to convert, as PyTorch's module.to()",
}
