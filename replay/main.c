/* searchmig-replay: placeholder main until the component lands. */
#include <sm/err.h>
#include <sm/opt.h>

#include <stdio.h>

struct cfg { int unused; };
static const struct sm_opt opts[] = { SM_OPT_END };

int main(int argc, char **argv)
{
    struct cfg cfg = { 0 };
    struct sm_cli cli = { "searchmig-replay", "[OPTIONS]", "Not implemented yet.", opts, false };
    char err[256];
    int rc = sm_opts_parse(&cli, &cfg, argc, argv, NULL, err, sizeof(err));
    if (rc == SM_EEOF)
        return 0;
    if (rc) {
        fprintf(stderr, "searchmig-replay: %s\n", err);
        return 2;
    }
    return 0;
}
