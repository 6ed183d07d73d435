//! The local stack (`wactl up`): compose's services run directly on the Docker Engine.
