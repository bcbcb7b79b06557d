//! keygate in front of real servers over loopback TCP: hyper, tonic, and the demo
//! server run as separate processes, alone and as a four-process cluster.

mod cluster;
mod demo_metering;
mod demo_server;
mod grpc;
mod hyper;
