function tf = endsWith(str, pattern, varargin)
% MATLAB semantics: true where str ends with any of the patterns (Octave 7 pairs them).
if ischar(str), str = {str}; end
if ischar(pattern), pattern = {pattern}; end
tf = false(size(str));
for k = 1:numel(pattern)
  p = pattern{k};
  tf = tf | cellfun(@(s) numel(s) >= numel(p) && strcmp(s(end-numel(p)+1:end), p), str);
end
end
