//! vigie-server
