"""Reduced settings of the tutorials for automated runs (tests, ``make demo --fast``).

The tutorials in ``tutorials/`` show the settings their text describes (11 layers, every
simulation, sliding windows on every sample), which is what users copy and what the published
gallery runs. Automated runs need them smaller: :func:`reduced_source` returns a tutorial's
source with the code edits listed here applied (fewer layers, fewer folds, explicit windows,
the all-layer matrices built from the two simulations already run). Each edit must match
exactly once, so an edit that no longer fits its tutorial fails loudly instead of silently
running the full settings.
"""

from __future__ import annotations

from pathlib import Path

#: tutorial stem -> [(code as written, reduced code), ...]
REDUCED: dict[str, list[tuple[str, str]]] = {'tutorial_01_surface_processing': [('n_layers = 11', 'n_layers = 3'),
                                    ('sizes = (2, 11, 15)', 'sizes = (2, 3)')],
 'tutorial_02_model_comparison': [('n_layers = 11', 'n_layers = 3'),
                                  ('f_all = np.zeros((n_layers, n_layers))\n'
                                   'for layer in range(n_layers):\n'
                                   '    vertex = multi_set.get_multilayer_vertex(layer, '
                                   'column)\n'
                                   '    sim = run_current_density_simulation(base_file, '
                                   'f"layer{layer}_", vertex,\n'
                                   '                                         seed=10 + layer, '
                                   'viz=False, **sim_kwargs)\n'
                                   '    f_all[layer], _ = model_comparison(fid_coords, sim, '
                                   'multi_set, viz=False,\n'
                                   '                                       '
                                   'invert_kwargs=invert_kwargs)\n'
                                   '    print(f"simulated layer {layer}: best model '
                                   '{np.argmax(f_all[layer])}")\n'
                                   'true_layers, names = np.arange(n_layers), [str(i + 1) for '
                                   'i in range(n_layers)]',
                                   'f_all = np.vstack([f_pial, f_white])\n'
                                   'true_layers, names = [0, 1], ["pial", "white"]')],
 'tutorial_03_model_comparison_cv': [('n_layers = 11', 'n_layers = 3'),
                                     ('n_folds, pc_test = (10, 10)',
                                      'n_folds, pc_test = (4, 25)'),
                                     ('cv_all = np.zeros((n_layers, n_layers))\n'
                                      'for layer in range(n_layers):\n'
                                      '    vertex = multi_set.get_multilayer_vertex(layer, '
                                      'column)\n'
                                      '    sim = run_current_density_simulation(base_file, '
                                      'f"layer{layer}_", vertex,\n'
                                      '                                         seed=10 + '
                                      'layer, viz=False, **sim_kwargs)\n'
                                      '    _, cv_errs = model_comparison(fid_coords, sim, '
                                      'multi_set, viz=False,\n'
                                      '                                  '
                                      'invert_kwargs=invert_kwargs)\n'
                                      '    cv_all[layer] = cv_error(cv_errs)\n'
                                      '    print(f"simulated layer {layer}: lowest CV error '
                                      'for layer {np.argmin(cv_all[layer])}")\n'
                                      'true_layers, names = np.arange(n_layers), [str(i + 1) '
                                      'for i in range(n_layers)]',
                                      'cv_all = np.vstack([results["pial"][1], '
                                      'results["white"][1]])\n'
                                      'true_layers, names = [0, 1], ["pial", "white"]')],
 'tutorial_04_sliding_window_model_comparison': [('n_layers = 11', 'n_layers = 3'),
                                                 ('invert_kwargs = dict(patch_size=5, '
                                                  'n_temp_modes=4, win_size=50, '
                                                  'win_overlap=True)',
                                                  'invert_kwargs = dict(patch_size=5, '
                                                  'n_temp_modes=4, win_size=50, '
                                                  'win_overlap=True)\n'
                                                  'centres = np.arange(-50.0, 51.0, 25.0)\n'
                                                  'invert_kwargs["wois"] = np.stack([centres - '
                                                  '25.0, centres + 25.0], axis=1)')],
 'tutorial_05_roi_power': [('n_layers = 11', 'n_layers = 3')],
 'tutorial_06_csd': [('n_layers = 15', 'n_layers = 7')],
 'tutorial_07_anatomical_predictors': [('n_layers = 11', 'n_layers = 3'),
                                       ('mapped = np.sort(rng.choice(n_columns, 300, '
                                        'replace=False))',
                                        'mapped = np.sort(rng.choice(n_columns, 24, '
                                        'replace=False))')],
 'tutorial_09_sliding_window_ebb_layer': [('n_layers = 11', 'n_layers = 7'),
                                          ('                  hann_windowing=False, viz=False)',
                                           '                  hann_windowing=False, '
                                           'viz=False)\n'
                                           'edges = np.arange(-87.5, 150.0, 25.0)  # ms\n'
                                           'win_kwargs["wois"] = np.stack([edges[:-1], '
                                           'edges[1:]], axis=1)')]}


def reduced_source(script: str | Path) -> str:
    """The source of a tutorial with its reduced settings.

    Parameters
    ----------
    script : str or Path
        ``tutorials/tutorial_*.py``.

    Returns
    -------
    str
        The edited source (the unchanged source for a tutorial without reduced settings).

    Raises
    ------
    ValueError
        If an edit does not match exactly once.
    """
    script = Path(script)
    src = script.read_text()
    for full, reduced in REDUCED.get(script.stem, []):
        n = src.count(full)
        if n != 1:
            raise ValueError(f"{script.name}: the reduced-settings edit for {full[:60]!r} "
                             f"matches {n} times (expected once); update tools/tutorial_settings.py")
        src = src.replace(full, reduced)
    return src


def write_reduced(script: str | Path, folder: str | Path) -> Path:
    """Write the reduced tutorial into ``folder`` (same file name) and return its path.

    Parameters
    ----------
    script : str or Path
        The tutorial.
    folder : str or Path
        Destination folder (created).

    Returns
    -------
    Path
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / Path(script).name
    out.write_text(reduced_source(script))
    return out
