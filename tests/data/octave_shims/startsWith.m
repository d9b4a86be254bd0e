function tf = startsWith(str, pattern, varargin)
% MATLAB semantics: true where str starts with any of the patterns (Octave 7 pairs them).
if ischar(str), str = {str}; end
if ischar(pattern), pattern = {pattern}; end
tf = false(size(str));
for k = 1:numel(pattern)
  p = pattern{k};
  tf = tf | cellfun(@(s) numel(s) >= numel(p) && strcmp(s(1:numel(p)), p), str);
end
end
