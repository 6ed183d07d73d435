//! The Kubernetes side: connect, plan, apply, track, record and roll back.
