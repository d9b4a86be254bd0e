function y = round(x, n)
% MATLAB's round(x, n) (n decimal digits); Octave 7 has only round(x).
if nargin < 2
  y = builtin('round', x);
else
  y = builtin('round', x .* 10.^n) ./ 10.^n;
end
end
