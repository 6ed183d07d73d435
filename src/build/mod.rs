//! Building and pushing the service image through the Docker Engine API.
