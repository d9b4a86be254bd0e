function tf = contains(str, pattern, varargin)
% MATLAB semantics: true where str contains any of the patterns (Octave 7 pairs them).
if ischar(str), str = {str}; end
if ischar(pattern), pattern = {pattern}; end
tf = false(size(str));
for k = 1:numel(pattern)
  p = pattern{k};
  tf = tf | cellfun(@(s) ~isempty(strfind(s, p)), str);
end
end
