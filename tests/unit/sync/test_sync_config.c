/*  test_sync_config.c: the machine's [sync] values come from the node
 *  config, whose defaults are their one source. */
#include <criterion/criterion.h>
#include <string.h>

#include "sync_machine.h"

Test(sync_config, defaults_are_the_node_configs)
{
    alys_config_t node;
    alys_config_defaults(&node);
    node.max_parallel_downloads = 7; /* a value no default has */
    node.download_window = 333;
    sync_machine_config_t a, b;
    sync_machine_config_from(&a, &node);
    cr_expect_eq(a.max_parallel_downloads, 7);
    cr_expect_eq(a.download_window, 333);
    alys_config_defaults(&node);
    sync_machine_config_from(&a, &node);
    sync_machine_config_defaults(&b);
    a.solo = b.solo = false;
    cr_expect_eq(memcmp(&a, &b, sizeof a), 0, "defaults == from(alys_config_defaults)");
    cr_expect_eq(b.max_parallel_downloads, node.max_parallel_downloads);
    cr_expect_eq(b.request_timeout_ms, node.request_timeout_ms);
    cr_expect_eq(b.checkpoint_interval, node.checkpoint_interval);
}

Test(sync_config, solo_when_the_node_has_no_bootstrap_peers)
{
    alys_config_t node;
    alys_config_defaults(&node);
    node.bootstrap_peer_count = 0;
    sync_machine_config_t c;
    sync_machine_config_from(&c, &node);
    cr_expect(c.solo);
    sync_machine_config_defaults(&c);
    cr_expect_not(c.solo, "the defaults are for a machine that is told its peers");
}
