//! Agents from the guide.
