/* `lockstep failover|status --qmp SOCKET`: one-shot commands to a running lockstep. */
#ifndef LOCKSTEP_CLI_MONITOR_CLIENT_H
#define LOCKSTEP_CLI_MONITOR_CLIENT_H

/* argv[0] is "failover" or "status". Returns the process exit status. */
int cmd_monitor(int argc, char **argv);

#endif
