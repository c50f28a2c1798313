/* searchmig-agent keys attach|detach (see keys.c). */
#ifndef AGENT_OPS_KEYS_H
#define AGENT_OPS_KEYS_H
/* argv[0] is "keys". Returns the process exit code. */
int agent_keys_main(int argc, char **argv);
#endif
