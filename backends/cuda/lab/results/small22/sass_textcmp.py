# cu22-small: compare the sm_90 SASS (.text bytes) of every kernel of two objects' fatbins, the
# anonymous-namespace hash in the names ignored (needs the zstd tool). Usage: sass_textcmp.py OLD.o NEW.o
import struct,sys,subprocess,hashlib,re
def texts(path):
    data=open(path,'rb').read()
    off=data.find(b'\x50\xed\x55\xba')
    magic,ver,hsz,fsz=struct.unpack_from('<IHHQ',data,off)
    p=off+hsz; end=p+fsz; cubs=[]
    while p<end:
        kind,unk,ehs,size=struct.unpack_from('<HHIQ',data,p)
        if kind==2:
            blob=data[p+ehs:p+ehs+size]
            cubs.append(subprocess.run(['zstd','-dc'],input=blob,capture_output=True).stdout if blob[:4]==b'\x28\xb5\x2f\xfd' else blob)
        p+=ehs+size
    out={}
    for e in cubs:
        shoff,=struct.unpack_from('<Q',e,0x28); shentsize,shnum,shstrndx=struct.unpack_from('<HHH',e,0x3a)
        secs=[struct.unpack_from('<IIQQQQIIQQ',e,shoff+i*shentsize) for i in range(shnum)]
        stro=secs[shstrndx][4]
        nm=lambda o: e[stro+o:e.index(b'\0',stro+o)].decode()
        for s in secs:
            n=nm(s[0])
            if n.startswith('.text.'):
                key=re.sub(r'_GLOBAL__N__[0-9a-f_]+','ANON',n[6:])
                out[key]=hashlib.md5(e[s[4]:s[4]+s[5]]).hexdigest()
    return out
a=texts(sys.argv[1]); b=texts(sys.argv[2])
same=sum(1 for k in a if k in b and a[k]==b[k]); diff=[k for k in a if k in b and a[k]!=b[k]]
print('kernels', len(a), len(b), 'same', same, 'differ', len(diff), 'only old', len([k for k in a if k not in b]), 'only new', len([k for k in b if k not in a]))
for k in diff[:5]: print(' differ', k[:150])
