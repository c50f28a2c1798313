#include <sm/opt.h>

/* Keeps replay_core non-empty and names the component in --version output. */
const char *replay_component_name(void);
const char *replay_component_name(void)
{
    return "searchmig-replay";
}
