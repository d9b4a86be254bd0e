"""
This module contains the unit tests for the `simulate` module from the `lameg` package.
"""
import os

import numpy as np
import pytest

from lameg.simulate import (run_dipole_simulation, run_current_density_simulation,
                            setup_opm_simulation)
from lameg.surf import LayerSurfaceSet
from lameg.util import load_meg_sensor_data, make_directory


@pytest.mark.dependency(depends=["tests/test_02_invert.py::test_invert_sliding_window_msp"],
                        scope='session')
def test_run_dipole_simulation(spm):
    """
    Tests the `run_dipole_simulation` function to verify the accurate generation of simulated MEG
    sensor data based on a specified dipole model in a cortical mesh.

    This test function performs several key operations:
    1. Prepares a Gaussian signal representing dipole activity and uses it along with a specified
       cortical mesh to simulate MEG data.
    2. Ensures that the simulation reflects the input parameters such as dipole moment, signal
       width, and signal-to-noise ratio.
    3. Verifies that the resulting simulated sensor data matches expected target values, testing
       both the amplitude of the sensor signals and the timing of the recordings.
    4. Checks that the channel names are correctly assigned in the simulated data.

    The function relies on the SPM object provided by a session-wide fixture, ensuring that the SPM
    model is initialized only once and reused, optimizing performance across tests.

    Parameters:
        spm (object): The SPM instance used to handle brain simulation and MEG data processing.

    Steps executed in the test:
    - A Gaussian signal is generated to simulate neuronal activity.
    - The `run_dipole_simulation` function is called with the generated signal and parameters
      defining the characteristics of the simulation.
    - The output MEG sensor data is loaded and compared against predefined target values to ensure
      the simulation's accuracy.
    - The first channel name is checked to confirm the correct configuration and data handling.

    Assertions:
    - Asserts that the simulated sensor data closely matches expected values, ensuring the
      simulation's output integrity.
    - Verifies that time vectors are accurate to the specified sampling rate.
    - Checks that the channel name matches expected setup, confirming proper MEG data formatting.

    The test depends on `test_invert_ebb` being successful, as it ensures the
    necessary data infrastructure and dependencies are correctly set up.
    """

    subj_id = 'sub-01'

    # Strength of simulated activity (nAm)
    dipole_moment = 8
    # Temporal width of the simulated Gaussian
    signal_width = .025  # 25ms

    # Generate 200ms of a Gaussian at a sampling rate of 600Hz (to match the data file)
    time = np.linspace(0, .2, 121)
    zero_time = time[int((len(time) - 1) / 2 + 1)]
    sim_signal = np.exp(-((time - zero_time) ** 2) / (2 * signal_width ** 2)).reshape(1, -1)

    surf_set = LayerSurfaceSet(subj_id, 2)
    mesh = surf_set.load(stage='ds', orientation='link_vector', fixed=True)

    sim_vertex = 24588
    # Orientation of the simulated dipole
    pial_unit_norm = mesh.darrays[2].data[sim_vertex, :]
    prefix = f'sim_{sim_vertex}_dipole_pial_'

    # Size of simulated patch of activity (mm)
    sim_patch_size = 5
    # SNR of simulated data (dB)
    snr = -10

    # Generate simulated data
    base_fname = './output/pspm-converted_autoreject-sub-104-ses-01-001-btn_trial-epo.mat'

    sim_fname = run_dipole_simulation(
        base_fname,
        prefix,
        sim_vertex,
        sim_signal,
        pial_unit_norm,
        dipole_moment,
        sim_patch_size,
        snr,
        average_trials=True,
        viz=False,
        spm_instance=spm
    )

    sim_sensor_data, time, ch_names = load_meg_sensor_data(sim_fname)

    target=np.array([ 0.7437857,  -1.6904477,   0.96605504,  3.2966776,   1.209851,    0.23732129,
                      3.6015632,   1.838498,   -2.81773,    -0.6407602 ])
    assert np.allclose(sim_sensor_data[0,:10], target, atol=1e-3)

    target=np.array([-0.1, -0.09833333, -0.09666667, -0.095, -0.09333333,
                     -0.09166667, -0.09, -0.08833333, -0.08666667, -0.085])*1000
    assert np.allclose(time[:10], target)

    assert ch_names[0] == 'MLC11'

    sim_fname_base = os.path.split(os.path.splitext(sim_fname)[0])[1]
    os.remove(os.path.join('output', f'{sim_fname_base}.mat'))
    os.remove(os.path.join('output', f'{sim_fname_base}.dat'))


@pytest.mark.dependency(depends=["tests/test_02_invert.py::test_invert_ebb"],
                        scope='session')
def test_run_current_density_simulation(spm):
    """
    Tests the `run_current_density_simulation` function to ensure it accurately simulates current
    density maps based on specific neural activity models and evaluates the MEG sensor data
    outputs against expected values.

    The function aims to:
    1. Simulate neuronal activity using a Gaussian waveform over a defined time course and verify
       the resulting sensor data.
    2. Ensure that the simulation parameters such as dipole moment, signal width, and
       signal-to-noise ratio (SNR) are correctly applied.
    3. Validate that the simulated data closely aligns with predefined target values, ensuring both
       temporal and spatial accuracy of the simulation.

    Parameters:
        spm (object): An instance of the initialized SPM application, used to handle the simulation
                      processes.

    Key operations in this test include:
    - Generating a Gaussian signal to represent localized brain activity.
    - Running the current density simulation using a cortical mesh and checking the output against
      expected sensor data.
    - Validating the generated sensor data and time series to ensure they match the expected
      patterns and values.
    - Confirming the correct assignment of channel names, verifying that data arrays are properly
      labeled and structured.

    Assertions:
    - Check if the first ten values of the simulated sensor data match the expected array of
      values, validating the accuracy of the simulation.
    - Ensure that the time series for the first ten data points are accurate to the specified
      sampling rate.
    - Verify that the first channel name matches the expected label, ensuring data integrity and
      proper configuration.

    This test is dependent on `test_invert_ebb` to ensure that required data setups
    and dependencies are appropriately configured beforehand.
    """

    # Frequency of simulated sinusoid (Hz)
    freq = 20
    # Strength of simulated activity (nAm)
    dipole_moment = 10
    # Sampling rate (must match the data file)
    s_rate = 600

    # Generate 1s of a sine wave at a sampling rate of 600Hz (to match the data file)
    time = np.linspace(0, 1, s_rate + 1)
    sim_signal = np.zeros(time.shape).reshape(1, -1)
    t_idx = np.where(time >= 0.5)[0]
    sim_signal[0, t_idx] = np.sin(time[t_idx] * freq * 2 * np.pi)

    sim_vertex = 24588
    prefix = f'sim_{sim_vertex}_current_density_pial_'

    # Size of simulated patch of activity (mm)
    sim_patch_size = 5
    # SNR of simulated data (dB)
    snr = -10

    # Generate simulated data
    base_fname='./output/spm-converted_autoreject-sub-104-ses-01-001-btn_trial-epo.mat'

    # Generate simulated data
    sim_fname = run_current_density_simulation(
        base_fname,
        prefix,
        sim_vertex,
        sim_signal,
        dipole_moment,
        sim_patch_size,
        snr,
        viz=False,
        spm_instance=spm
    )

    sim_sensor_data, time, ch_names = load_meg_sensor_data(sim_fname)

    target=np.array([ 14.987382,   24.677847,   -6.9504447,  42.18486,   -15.464751,    9.2225065,
                      15.290984,   28.48607,    19.375944,  -20.720377 ])
    assert np.allclose(sim_sensor_data[0,:10,0], target, atol=1e-2)

    target=np.array([[-0.5, -0.49833333, -0.49666667, -0.495, -0.49333333,
                      -0.49166667, -0.49, -0.48833333, -0.48666667, -0.485]])*1000
    assert np.allclose(time[:10], target)

    assert ch_names[0] == 'MLC11'

    # Test average
    sim_fname = run_current_density_simulation(
        base_fname,
        prefix,
        sim_vertex,
        sim_signal,
        dipole_moment,
        sim_patch_size,
        snr,
        average_trials=True,
        viz=False,
        spm_instance=spm
    )

    sim_sensor_data, time, ch_names = load_meg_sensor_data(sim_fname)

    target = np.array([-0.22223109, -7.6744003,   1.560365,    3.7215781,   6.929445,    2.4066124,
                       3.6790009,   0.5038665,  -1.4930873,  -0.32599336])
    assert np.allclose(sim_sensor_data[:10, 0], target, atol=1e-2)

    target = np.array([[-0.5, -0.49833333, -0.49666667, -0.495, -0.49333333,
                        -0.49166667, -0.49, -0.48833333, -0.48666667, -0.485]]) * 1000
    assert np.allclose(time[:10], target)

    assert ch_names[0] == 'MLC11'

    data_fname_base = os.path.split(os.path.splitext(base_fname)[0])[1]
    os.remove(os.path.join('output', f'{data_fname_base}.mat'))
    os.remove(os.path.join('output', f'{data_fname_base}.dat'))


@pytest.mark.dependency()
def test_setup_opm_simulation(spm):
    """
    Tests the `setup_opm_simulation` function, which wraps SPM's `spm_opm_sim` to create a
    simulated OPM dataset with sensors placed on the subject's scalp.

    This test performs several key operations:
    1. Runs a whole-head simulation and checks that the `.mat` and `.dat` files are moved from the
       working directory to the requested output directory, and that the returned path points to
       the `.mat` file.
    2. Loads the sensor data and checks the number of channels, the number of samples and the
       sampling interval against the requested parameters.
    3. Runs a second simulation restricted to the upper hemisphere (`wholehead=False`) and checks
       that it has fewer sensors than the whole-head array.
    """
    surf_set = LayerSurfaceSet('sub-01', 2)
    out_dir = make_directory('./', ['output'])
    s_rate = 1000
    n_samples = 200

    np.random.seed(0)
    data_file = os.path.join(out_dir, 'opm_sim_test.mat')
    sim_fname = setup_opm_simulation(
        data_file,
        surf_set,
        s_rate=s_rate,
        n_samples=n_samples,
        n_trials=1,
        wholehead=True,
        viz=False,
        spm_instance=spm
    )

    # Output files are moved out of the working directory
    assert os.path.abspath(sim_fname) == os.path.abspath(data_file)
    assert os.path.exists(os.path.join(out_dir, 'opm_sim_test.mat'))
    assert os.path.exists(os.path.join(out_dir, 'opm_sim_test.dat'))
    assert not os.path.exists('opm_sim_test.mat')
    assert not os.path.exists('opm_sim_test.dat')

    sensor_data, time, ch_names = load_meg_sensor_data(sim_fname)
    n_wholehead_sensors = len(ch_names)
    assert n_wholehead_sensors > 0
    assert sensor_data.shape[0] == n_wholehead_sensors
    assert sensor_data.shape[1] == n_samples
    assert np.all(np.isfinite(sensor_data))
    assert len(time) == n_samples
    # Time is in ms
    assert np.allclose(np.diff(time), 1000 / s_rate)

    # Sensors restricted to the upper part of the head
    upper_fname = setup_opm_simulation(
        os.path.join(out_dir, 'opm_sim_upper_test.mat'),
        surf_set,
        s_rate=s_rate,
        n_samples=n_samples,
        wholehead=False,
        viz=False,
        spm_instance=spm
    )
    _, _, ch_names = load_meg_sensor_data(upper_fname)
    assert 0 < len(ch_names) < n_wholehead_sensors

    for fname in ['opm_sim_test', 'opm_sim_upper_test']:
        os.remove(os.path.join(out_dir, f'{fname}.mat'))
        os.remove(os.path.join(out_dir, f'{fname}.dat'))
