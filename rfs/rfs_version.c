#include <sm/opt.h>

/* Keeps rfs_core non-empty and names the component in --version output. */
const char *rfs_component_name(void);
const char *rfs_component_name(void)
{
    return "searchmig-rfs";
}
