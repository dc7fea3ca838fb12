// Imported first by labc-secret/common.mjs: labc with the network secret, on a root port of its
// own, in the same run as labc without it (whose processes do not see BENCH_LABC_SECRET).
process.env.LABC_SECRET = process.env.BENCH_LABC_SECRET;
process.env.LABC_ROUTER_PORT = '15557';
