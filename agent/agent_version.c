#include <sm/opt.h>

/* Keeps agent_core non-empty and names the component in --version output. */
const char *agent_component_name(void);
const char *agent_component_name(void)
{
    return "searchmig-agent";
}
