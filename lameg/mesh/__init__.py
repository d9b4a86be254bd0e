"""Triangle-mesh algorithms: normals, topology, vertex-correspondent decimation, distances."""

from .adjacency import (  # noqa: F401
    boundary_vertices,
    connected_components,
    edge_face_counts,
    find_non_manifold_edges,
    is_consistently_oriented,
    mesh_adjacency,
    remove_unconnected_vertices,
    remove_vertices,
    split_connected_components,
)
from .decimate import decimate_vertex_subset  # noqa: F401
from .geodesic import local_geodesic_distances  # noqa: F401
from .normals import (  # noqa: F401
    face_areas,
    face_normals,
    normit,
    orient_outward,
    signed_volume,
    triangle_quality,
    vertex_areas,
    vertex_normals,
)
