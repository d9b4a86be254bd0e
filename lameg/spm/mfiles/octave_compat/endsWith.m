function tf = endsWith(str, pattern, varargin)
% MATLAB semantics for Octave 7: true where STR ends with any of the patterns (Octave 7 pairs
% strings and patterns element-wise). Accepts the 'IgnoreCase' option.
if ischar(str), str = {str}; end
if ischar(pattern), pattern = {pattern}; end
if numel(varargin) >= 2 && strcmpi(varargin{1}, 'IgnoreCase') && varargin{2}
  str = lower(str);
  pattern = lower(pattern);
end
tf = false(size(str));
for k = 1:numel(pattern)
  p = pattern{k};
  tf = tf | cellfun(@(s) numel(s) >= numel(p) && strcmp(s(end-numel(p)+1:end), p), str);
end
end
