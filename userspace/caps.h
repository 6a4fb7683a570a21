#ifndef KG_CAPS_H
#define KG_CAPS_H

struct kg_cli;
int kg_cmd_features(struct kg_cli *cli, int argc, char **argv);

#endif
