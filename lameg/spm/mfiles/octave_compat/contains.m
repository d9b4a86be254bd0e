function tf = contains(str, pattern, varargin)
% MATLAB semantics for Octave 7: true where STR contains any of the patterns (Octave 7 pairs
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
  tf = tf | cellfun(@(s) ~isempty(strfind(s, p)), str);
end
end
