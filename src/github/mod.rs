//! Reporting to GitHub: deployments and statuses, PR comments, and Actions files.
